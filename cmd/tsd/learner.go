package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/sugarme/gotch"

	"tsd/coordinator"
	"tsd/hub"
	"tsd/learner"
	"tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/tensor"
	"tsd/weights"
)

// roleFlags are what every long-running role shares: logging, rpc settings, coordinators, torch.
type roleFlags struct {
	rc           rpc.Config
	coordinators []string
	logLevel     string
	logFormat    string
	device       string
	threads      int
}

func (r *roleFlags) register(f *pflag.FlagSet) {
	r.rc.BindFlags(f)
	f.StringSliceVar(&r.coordinators, "coordinators", []string{"127.0.0.1:7001"}, "coordinator gRPC addresses (any node answers)")
	f.StringVar(&r.logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&r.logFormat, "log-format", "text", "text or json")
	f.StringVar(&r.device, "device", "cpu", "cpu, cuda or cuda:N")
	f.IntVar(&r.threads, "threads", tensor.ThreadsFromEnv(runtime.NumCPU()), "libtorch CPU threads")
}

// start sets up logging, libtorch threads and the coordinator client.
func (r *roleFlags) start(cmd *cobra.Command) (*slog.Logger, gotch.Device, *coordinator.Client, error) {
	log, err := newLogger(cmd.ErrOrStderr(), r.logLevel, r.logFormat)
	if err != nil {
		return nil, gotch.CPU, nil, err
	}
	dev, err := parseDevice(r.device)
	if err != nil {
		return nil, gotch.CPU, nil, err
	}
	if err := tensor.SetThreads(r.threads); err != nil {
		return nil, gotch.CPU, nil, err
	}
	coord, err := coordinator.Dial(r.coordinators, r.rc, log)
	return log, dev, coord, err
}

// serve listens on bind and serves s until the returned stop is called.
func serve(s *rpc.Server, bind string, log *slog.Logger) (net.Addr, func(), error) {
	lis, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, nil, err
	}
	go func() {
		if err := s.Serve(lis); err != nil {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	return lis.Addr(), func() { s.Shutdown(2 * time.Second) }, nil
}

func newLearnerCmd() *cobra.Command {
	var (
		rf    roleFlags
		sc    = learner.DefaultServiceConfig()
		tc    = learner.DefaultConfig()
		bind  string
		dtype string
		model string
	)
	cmd := &cobra.Command{
		Use:   "learner",
		Short: "Run the learner: ingest rollouts, train, checkpoint, publish policy versions, serve weights",
		Long: `Runs the learner until SIGINT/SIGTERM (or --max-steps). It takes the run's learner lease from the
coordinators, admits rollouts from actors into its write-ahead log (acked once durable), trains on
them in order, and every --publish-every steps writes a checkpoint, stores the weights as a new
version, publishes it, and serves it to actors. Restarted with the same --data-dir it resumes.`,
		Args: cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			log, dev, coord, err := rf.start(cmd)
			if err != nil {
				return err
			}
			defer coord.Close()
			sc.Device = dev
			if sc.PublishDType, err = parseDType(dtype); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if sc.InitModel, err = hub.Resolve(ctx, model, hub.Options{Progress: cmd.ErrOrStderr()}); err != nil {
				return err
			}
			return runLearner(ctx, &rf, sc, tc, bind, coord, log)
		}),
	}
	f := cmd.Flags()
	rf.register(f)
	f.StringVar(&sc.ID, "id", "learner", "learner id at the coordinator")
	f.StringVar(&sc.Addr, "addr", "127.0.0.1:7201", "gRPC address actors dial (advertised)")
	f.StringVar(&bind, "listen", "", "listen address when it differs from --addr (e.g. 0.0.0.0:7201)")
	f.StringVar(&sc.RunID, "run-id", "tsd", "run name; a learner with another config for the same run is refused")
	f.StringVar(&sc.DataDir, "data-dir", "", "write-ahead log, checkpoint and versions (required)")
	f.StringVar(&model, "model", "", "initial model: directory or Hugging Face id (required)")
	f.Uint64Var(&sc.MaxLag, "max-lag", sc.MaxLag, "admit rollouts at most this many versions behind")
	f.IntVar(&sc.PublishEvery, "publish-every", sc.PublishEvery, "optimizer steps between published versions")
	f.IntVar(&sc.KeepVersions, "keep-versions", sc.KeepVersions, "published versions kept for serving")
	f.StringVar(&dtype, "publish-dtype", "f32", "dtype of published weights: f32 or bf16")
	f.Uint32Var(&sc.Credits, "credits", sc.Credits, "unacked rollouts one actor stream may have in flight")
	f.IntVar(&sc.MaxBuffer, "max-buffer", sc.MaxBuffer, "untrained rollouts allowed before credits are withheld (0: no limit)")
	f.IntVar(&sc.MaxCompletionTokens, "max-completion-tokens", sc.MaxCompletionTokens, "refuse samples longer than this")
	f.DurationVar(&sc.LeaseTTL, "lease-ttl", sc.LeaseTTL, "learner lease length")
	f.Int64Var(&sc.MaxSteps, "max-steps", 0, "stop after this many optimizer steps (0 = run until stopped)")
	f.BoolVar(&sc.SyncLog, "sync-log", sc.SyncLog, "fsync the write-ahead log before acking")
	registerTrainFlags(f, &tc)
	_ = cmd.MarkFlagRequired("data-dir")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}

func runLearner(ctx context.Context, rf *roleFlags, sc learner.ServiceConfig, tc learner.Config, bind string, coord *coordinator.Client, log *slog.Logger) error {
	if err := weights.CheckMessageLimit(rf.rc.MaxMsgBytes); err != nil {
		return fmt.Errorf("--max-msg-bytes: %w", err)
	}
	svc, err := learner.Open(ctx, sc, tc, coord, log)
	if err != nil {
		return err
	}
	defer svc.Close()
	reg := rpc.NewRegistry()
	if err := svc.RegisterMetrics(reg); err != nil {
		return err
	}
	srv, err := rpc.NewServer(rf.rc, reg, log, weights.ServerOptions()...)
	if err != nil {
		return err
	}
	dir := &learner.CoordinatorDirectory{State: coord.ClusterState, TTL: 5 * time.Second}
	tsdv1.RegisterLearnerServer(srv, learner.NewGRPC(svc, dir))
	tsdv1.RegisterWeightsServer(srv, weights.NewServer(svc.Store()))
	if bind == "" {
		bind = sc.Addr
	}
	addr, stopServing, err := serve(srv, bind, log)
	if err != nil {
		return err
	}
	defer stopServing()
	srv.SetServing(true, tsdv1.Learner_ServiceDesc.ServiceName, tsdv1.Weights_ServiceDesc.ServiceName)
	if rf.rc.MetricsAddr != "" {
		ms, err := rpc.ServeMetrics(rf.rc, reg, log)
		if err != nil {
			return err
		}
		defer ms.Close()
	}
	log.Info("learner serving", "addr", addr.String(), "algo", tc.Algo)
	err = svc.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// registerTrainFlags exposes the training algorithm's settings.
func registerTrainFlags(f *pflag.FlagSet, c *learner.Config) {
	f.StringVar(&c.Algo, "algo", c.Algo, "mcts, best-of-n, cispo or grpo")
	f.StringVar(&c.PolicyLoss, "policy-loss", c.PolicyLoss, "policy loss of mcts/best-of-n: cispo or ppo")
	f.Float64Var(&c.ClipEps, "clip-eps", c.ClipEps, "PPO-clip ε")
	f.Float64Var(&c.EpsHigh, "eps-high", c.EpsHigh, "CISPO ε_high")
	f.Float64Var(&c.ValueCoef, "value-coef", c.ValueCoef, "value loss weight")
	f.Float64Var(&c.KLCoef, "kl-coef", c.KLCoef, "k3 KL weight (to the initial model)")
	f.Float64Var(&c.EntropyCoef, "entropy-coef", c.EntropyCoef, "entropy bonus weight")
	f.Float64Var(&c.Gamma, "gamma", c.Gamma, "GAE γ")
	f.Float64Var(&c.Lambda, "lambda", c.Lambda, "GAE λ")
	f.IntVar(&c.GroupSize, "group-size", c.GroupSize, "samples per group rollout (cispo/grpo)")
	f.IntVar(&c.GlobalBatch, "global-batch", c.GlobalBatch, "samples per optimizer step")
	f.IntVar(&c.MicroBatch, "micro-batch", c.MicroBatch, "samples per forward/backward")
	f.Uint64Var(&c.Seed, "train-seed", c.Seed, "trainer seed")
	f.Float64Var(&c.Optim.LR, "lr", c.Optim.LR, "peak learning rate")
	f.Int64Var(&c.Optim.WarmupSteps, "warmup-steps", c.Optim.WarmupSteps, "linear warmup steps")
	f.Int64Var(&c.Optim.DecaySteps, "decay-steps", c.Optim.DecaySteps, "step at which linear decay reaches --final-lr (0: constant)")
	f.Float64Var(&c.Optim.FinalLR, "final-lr", c.Optim.FinalLR, "learning rate after decay")
	f.Float64Var(&c.Optim.WeightDecay, "weight-decay", c.Optim.WeightDecay, "AdamW decoupled weight decay")
	f.Float64Var(&c.Optim.MaxGradNorm, "max-grad-norm", c.Optim.MaxGradNorm, "global grad-norm clip (0 = none)")
}

func parseDType(s string) (gotch.DType, error) {
	switch s {
	case "f32":
		return gotch.Float, nil
	case "bf16":
		return gotch.BFloat16, nil
	}
	return gotch.Float, fmt.Errorf("dtype %q: want f32 or bf16", s)
}
