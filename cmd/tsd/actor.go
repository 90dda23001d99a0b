package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"tsd/actor"
	"tsd/coordinator"
	"tsd/countdown"
	"tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/weights"
)

func newActorCmd() *cobra.Command {
	var (
		rf    roleFlags
		cfg   = actor.DefaultConfig()
		sf    = searchFlags{cfg: cfg.Search}
		bind  string
		style string
	)
	cmd := &cobra.Command{
		Use:   "actor",
		Short: "Run an actor: tree search (or sampling) with the newest policy, rollouts streamed to the learner",
		Long: `Runs an actor until SIGINT/SIGTERM (or --max-rollouts). It registers with the coordinators,
loads the newest published version (or --model before the first), searches problems from
--problems in waves, and streams the rollouts to the learner; it fetches each new version in the
background (from peers that hold it, else the learner) and serves the version it holds to peers.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, dev, coord, err := rf.start(cmd)
			if err != nil {
				return err
			}
			defer coord.Close()
			cfg.Device, cfg.Search = dev, sf.cfg
			if cfg.Style, err = countdown.ParsePromptStyle(style); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return runActor(ctx, &rf, cfg, bind, coord, log)
		},
	}
	f := cmd.Flags()
	rf.register(f)
	sf.register(cmd)
	f.StringVar(&cfg.ID, "id", "", "actor id, stable across restarts (default: the host name)")
	f.StringVar(&cfg.Addr, "addr", "", "gRPC address peers dial for weights and status (empty: serve nothing)")
	f.StringVar(&bind, "listen", "", "listen address when it differs from --addr")
	f.StringVar(&cfg.InitModel, "model", "", "initial model (version 0): directory or Hugging Face id (required)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "where fetched versions are kept (required)")
	f.IntVar(&cfg.KeepVersions, "keep-versions", cfg.KeepVersions, "fetched versions kept on disk (besides the one loaded and any a peer is fetching)")
	f.StringVar(&cfg.Problems, "problems", "data/countdown/train.jsonl", "Countdown problems (JSONL)")
	f.StringVar(&style, "prompt-style", "full", "full or compact (tiny models)")
	f.StringVar(&cfg.Algo, "algo", cfg.Algo, "mcts, group (for cispo/grpo) or best-of-n")
	f.IntVar(&cfg.Wave, "wave", cfg.Wave, "problems worked on at once (trees in flight)")
	f.IntVar(&cfg.Batch.MaxBatch, "max-batch", cfg.Batch.MaxBatch, "most expansion requests in one model call")
	f.DurationVar(&cfg.Batch.MaxWait, "max-wait", cfg.Batch.MaxWait, "how long a model call waits to fill its batch")
	f.IntVar(&cfg.GroupSize, "group-size", cfg.GroupSize, "samples per problem (group)")
	f.IntVar(&cfg.BestOfN, "best-of", cfg.BestOfN, "samples per problem (best-of-n)")
	f.Float64Var(&cfg.SampleTemperature, "sample-temperature", cfg.SampleTemperature, "temperature of group and best-of-n sampling")
	f.IntVar(&cfg.MaxNewTokens, "max-new-tokens", cfg.MaxNewTokens, "token budget of a sampled completion")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", cfg.LeaseTTL, "actor lease length")
	f.IntVar(&cfg.Queue, "queue", cfg.Queue, "finished rollouts that may wait for credits")
	f.IntVar(&cfg.MaxRollouts, "max-rollouts", 0, "stop after this many rollouts (0 = run until stopped)")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "seed of problem order and sampling")
	_ = cmd.MarkFlagRequired("model")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

func runActor(ctx context.Context, rf *roleFlags, cfg actor.Config, bind string, coord *coordinator.Client, log *slog.Logger) error {
	if cfg.ID == "" {
		host, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--id: %w", err)
		}
		cfg.ID = host
	}
	dial := func(addr string) (*grpc.ClientConn, error) {
		return rpc.Dial(addr, rf.rc, weights.DialOptions()...)
	}
	a, err := actor.New(cfg, coord, dial, log.With("actor", cfg.ID))
	if err != nil {
		return err
	}
	reg := rpc.NewRegistry()
	if err := a.RegisterMetrics(reg); err != nil {
		return err
	}
	if cfg.Addr != "" {
		if err := weights.CheckMessageLimit(rf.rc.MaxMsgBytes); err != nil {
			return fmt.Errorf("--max-msg-bytes: %w", err)
		}
		srv, err := rpc.NewServer(rf.rc, reg, log, weights.ServerOptions()...)
		if err != nil {
			return err
		}
		tsdv1.RegisterActorServer(srv, actor.NewGRPC(a))
		tsdv1.RegisterWeightsServer(srv, weights.NewServer(a.Store()))
		if bind == "" {
			bind = cfg.Addr
		}
		_, stopServing, err := serve(srv, bind, log)
		if err != nil {
			return err
		}
		defer stopServing()
		srv.SetServing(true, tsdv1.Actor_ServiceDesc.ServiceName, tsdv1.Weights_ServiceDesc.ServiceName)
	}
	if rf.rc.MetricsAddr != "" {
		ms, err := rpc.ServeMetrics(rf.rc, reg, log)
		if err != nil {
			return err
		}
		defer ms.Close()
	}
	return a.Run(ctx)
}

func newStatusCmd() *cobra.Command {
	var rc rpc.Config
	var addr string
	var asJSON, isActor bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Ask the learner (or an actor, with --actor) for its status over gRPC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			conn, err := rpc.Dial(addr, rc)
			if err != nil {
				return err
			}
			defer conn.Close()
			if isActor {
				st, err := tsdv1.NewActorClient(conn).Status(ctx, &tsdv1.ActorStatusRequest{})
				if err != nil {
					return err
				}
				return printProto(cmd.OutOrStdout(), st)
			}
			st, err := tsdv1.NewLearnerClient(conn).Status(ctx, &tsdv1.StatusRequest{})
			if err != nil {
				return err
			}
			if asJSON {
				return printProto(cmd.OutOrStdout(), st)
			}
			printLearnerStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "learner", "127.0.0.1:7201", "learner (or actor) gRPC address")
	f.BoolVar(&isActor, "actor", false, "the address is an actor's")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	bindClientFlags(f, &rc)
	return cmd
}

func printProto(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

func printLearnerStatus(w io.Writer, s *tsdv1.StatusResponse) {
	fmt.Fprintf(w, "run %s  learner %s  algo %s  epoch %d  up %s\n", s.GetRunId(), s.GetLearnerId(), s.GetAlgo(), s.GetEpoch(),
		(time.Duration(s.GetUptimeMs()) * time.Millisecond).Round(time.Second))
	fmt.Fprintf(w, "step %d  version %d  lr %.3g\n", s.GetStep(), s.GetVersion(), s.GetLr())
	keys := make([]string, 0, len(s.GetLosses()))
	for k := range s.GetLosses() {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "  %-18s %.4f\n", k, s.GetLosses()[k])
	}
	r, l := s.GetReward(), s.GetLength()
	fmt.Fprintf(w, "reward mean %.3f ± %.3f (n %d)  correct %.1f%%  length %.1f tokens\n", r.GetMean(), r.GetStd(), r.GetCount(), 100*s.GetCorrectRate(), l.GetMean())
	fmt.Fprintf(w, "rollouts: %d accepted, %d trained, %d buffered; %.2f/s, %.0f tokens/s\n",
		s.GetRolloutsAccepted(), s.GetRolloutsTrained(), s.GetBufferDepth(), s.GetRolloutsPerSec(), s.GetTokensPerSec())
	fmt.Fprintf(w, "staleness %v  rejected %v\n", s.GetStaleness(), s.GetRejected())
	fmt.Fprintf(w, "actors: %d\n", len(s.GetActors()))
	for _, a := range s.GetActors() {
		fmt.Fprintf(w, "  %-16s %d rollouts, last seq %d, version %d\n", a.GetActorId(), a.GetRollouts(), a.GetLastSeq(), a.GetPolicyVersion())
	}
}
