package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/protobuf/encoding/protojson"

	"tsd/coordinator"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

func newCoordinatorCmd() *cobra.Command {
	cfg := coordinator.DefaultConfig()
	cfg.RaftAddr, cfg.GRPCAddr = "127.0.0.1:7101", "127.0.0.1:7001"
	var rc rpc.Config
	var bootstrap, logLevel, logFormat string
	cmd := &cobra.Command{
		Use:   "coordinator",
		Short: "Run a raft coordinator node (run config, learner lease, policy versions, actor leases)",
		Long: `Runs one coordinator node until SIGINT/SIGTERM. Start three with the same --bootstrap list for
a fault-tolerant cluster, or one with --bootstrap self for development; add nodes later with
--join. A restarted node finds its raft state in --data-dir and ignores --bootstrap and --join.`,
		Example: `  tsd coordinator --id n1 --grpc-addr 127.0.0.1:7001 --raft-addr 127.0.0.1:7101 --data-dir /var/lib/tsd/n1 \
    --bootstrap n1=127.0.0.1:7101=127.0.0.1:7001,n2=127.0.0.1:7102=127.0.0.1:7002,n3=127.0.0.1:7103=127.0.0.1:7003
  tsd coordinator --id n4 --grpc-addr 127.0.0.1:7004 --raft-addr 127.0.0.1:7104 --data-dir /var/lib/tsd/n4 --join 127.0.0.1:7001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, logFormat)
			if err != nil {
				return err
			}
			if cfg.Bootstrap, err = bootstrapPeers(bootstrap, cfg.NodeID); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			reg := rpc.NewRegistry()
			svc, err := coordinator.Start(ctx, cfg, rc, reg, log)
			if err != nil {
				return err
			}
			if rc.MetricsAddr != "" {
				ms, err := rpc.ServeMetrics(rc, reg, log)
				if err != nil {
					return fmt.Errorf("%w (and closing: %w)", err, svc.Close())
				}
				defer ms.Close()
			}
			<-ctx.Done()
			log.Info("coordinator stopping")
			return svc.Close()
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.NodeID, "id", "", "raft id of this node, stable across restarts (required)")
	f.StringVar(&cfg.GRPCAddr, "grpc-addr", cfg.GRPCAddr, "gRPC address others dial (port 0: any free port)")
	f.StringVar(&cfg.GRPCBind, "grpc-bind", "", "gRPC listen address when it differs from --grpc-addr (e.g. 0.0.0.0:7001)")
	f.StringVar(&cfg.RaftAddr, "raft-addr", cfg.RaftAddr, "raft address other nodes dial")
	f.StringVar(&cfg.RaftBind, "raft-bind", "", "raft listen address when it differs from --raft-addr")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for raft.db and snapshots (required)")
	f.StringVar(&bootstrap, "bootstrap", "", `initial voters ID=RAFT_ADDR=GRPC_ADDR,... including this node, or "self" for a one-node cluster`)
	f.StringSliceVar(&cfg.Join, "join", nil, "gRPC addresses of running coordinators to join through (new node without --bootstrap)")
	f.BoolVar(&cfg.Replace, "replace", false, "with --join: take this --id (or --raft-addr) over from a voter that has other addresses")
	f.DurationVar(&cfg.ApplyTimeout, "apply-timeout", cfg.ApplyTimeout, "how long a write may wait for raft to commit")
	f.DurationVar(&cfg.LearnerTTL, "learner-ttl", cfg.LearnerTTL, "learner lease length when a request gives none")
	f.DurationVar(&cfg.ActorTTL, "actor-ttl", cfg.ActorTTL, "actor lease length when a request gives none")
	f.DurationVar(&cfg.HeartbeatTimeout, "heartbeat-timeout", cfg.HeartbeatTimeout, "raft: silence from the leader before a follower campaigns")
	f.DurationVar(&cfg.ElectionTimeout, "election-timeout", cfg.ElectionTimeout, "raft: how long a candidate waits for votes")
	f.Uint64Var(&cfg.SnapshotThreshold, "snapshot-threshold", cfg.SnapshotThreshold, "raft log entries between snapshots")
	f.DurationVar(&cfg.SnapshotInterval, "snapshot-interval", cfg.SnapshotInterval, "how often to check --snapshot-threshold")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	f.StringVar(&logFormat, "log-format", "text", "text or json")
	rc.BindFlags(f)
	_ = cmd.MarkFlagRequired("id")
	_ = cmd.MarkFlagRequired("data-dir")
	return cmd
}

// bootstrapPeers parses --bootstrap: empty (join or restart), "self", or a peer list.
func bootstrapPeers(s, self string) ([]coordinator.Peer, error) {
	switch s {
	case "":
		return nil, nil
	case "self":
		return []coordinator.Peer{{ID: self}}, nil
	}
	return coordinator.ParsePeers(s)
}

// bindClientFlags are the connection flags of the client-only commands (status, cluster).
func bindClientFlags(f *pflag.FlagSet, rc *rpc.Config) {
	f.StringVar(&rc.Token, "token", "", "shared bearer token (prefer TSD_TOKEN)")
	f.StringVar(&rc.TLSCA, "tls-ca", "", "PEM CA to verify the server with (enables TLS)")
	f.StringVar(&rc.TLSCert, "tls-cert", "", "PEM client certificate for mutual TLS")
	f.StringVar(&rc.TLSKey, "tls-key", "", "PEM private key for --tls-cert")
}

// newLogger writes structured logs to w at the given level, as text or JSON lines.
func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

func newClusterCmd() *cobra.Command {
	var rc rpc.Config
	var addrs []string
	var asJSON bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Print a coordinator cluster's state: members, leader, learner lease, versions, actors",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			c, err := coordinator.Dial(addrs, rc, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			defer c.Close()
			cs, err := c.ClusterState(ctx)
			if err != nil {
				return err
			}
			if asJSON {
				b, err := protojson.MarshalOptions{Multiline: true, EmitUnpopulated: true}.Marshal(cs)
				if err != nil {
					return err
				}
				_, err = fmt.Fprintln(cmd.OutOrStdout(), string(b))
				return err
			}
			printCluster(cmd.OutOrStdout(), cs, time.Now())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&addrs, "coordinators", []string{"127.0.0.1:7001"}, "coordinator gRPC addresses (any node answers)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.DurationVar(&timeout, "timeout", 10*time.Second, "give up after this long")
	bindClientFlags(f, &rc)
	return cmd
}

func printCluster(w io.Writer, cs *tsdv1.ClusterStateResponse, now time.Time) {
	in := func(ms int64) string { return time.UnixMilli(ms).Sub(now).Round(100 * time.Millisecond).String() }
	fmt.Fprintf(w, "leader:    %s (applied index %d)\n", orNone(cs.GetLeaderId()), cs.GetCommitIndex())
	for _, s := range cs.GetServers() {
		role := "nonvoter"
		if s.GetVoter() {
			role = "voter"
		}
		if s.GetLeader() {
			role += ", leader"
		}
		fmt.Fprintf(w, "  %-8s raft %-21s grpc %-21s %s\n", s.GetNodeId(), s.GetRaftAddr(), orNone(s.GetGrpcAddr()), role)
	}
	if r := cs.GetRun(); r != nil {
		fmt.Fprintf(w, "run:       %s (config sha256 %s)\n", r.GetRunId(), r.GetConfigSha256())
	}
	if l := cs.GetLearner(); l != nil {
		fmt.Fprintf(w, "learner:   %s at %s, epoch %d, lease ends in %s\n", l.GetLearnerId(), l.GetAddr(), l.GetEpoch(), in(l.GetExpiresUnixMs()))
	}
	fmt.Fprintf(w, "versions:  %d\n", cs.GetVersions())
	if v := cs.GetLatest(); v != nil {
		fmt.Fprintf(w, "latest:    v%d step %d, %d bytes, sha256 %s, from %s\n", v.GetVersion(), v.GetStep(), v.GetSizeBytes(), v.GetSha256(), v.GetFetchAddr())
	}
	fmt.Fprintf(w, "actors:    %d\n", len(cs.GetActors()))
	for _, a := range cs.GetActors() {
		fmt.Fprintf(w, "  %-16s %-21s holds v%d, lease ends in %s\n", a.GetActorId(), orNone(a.GetAddr()), a.GetHeldVersion(), in(a.GetExpiresUnixMs()))
	}
}

func orNone(s string) string {
	if strings.TrimSpace(s) == "" {
		return "(none)"
	}
	return s
}
