package main

import (
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"tsd/local"
)

func newLocalCmd() *cobra.Command {
	var (
		cfg                    = local.Config{Actors: 2, Algo: "mcts", BasePort: 17000, Progress: 5 * time.Second}
		learnerArgs, actorArgs string
		logLevel               string
	)
	cmd := &cobra.Command{
		Use:   "local",
		Short: "Run coordinator + learner + N actors on loopback (real raft, real gRPC), with live progress",
		Long: `local starts a raft coordinator (one node, or --coordinator-nodes), the learner and --actors
actors as child processes of this binary, on loopback ports from --base-port, and prints the
learner's progress (step, version, reward, rollouts/s) every --progress until the learner stops
(--learner-args "--max-steps N") or --duration passes. Each process logs to DATA_DIR/logs/;
progress goes to DATA_DIR/progress.jsonl.`,
		Example: `  tsd local --model runs/tiny --problems data/countdown/test.jsonl --data-dir runs/local \
    --learner-args "--max-steps 40 --lr 1e-3" --actor-args "--prompt-style compact --iterations 4"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, "text")
			if err != nil {
				return err
			}
			cfg.LearnerArgs, cfg.ActorArgs = strings.Fields(learnerArgs), strings.Fields(actorArgs)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			sys, err := local.Start(ctx, cfg, log)
			if err != nil {
				return err
			}
			return sys.Watch(ctx, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Model, "model", "", "initial model directory (required)")
	f.StringVar(&cfg.Problems, "problems", "data/countdown/train.jsonl", "Countdown problems for the actors")
	f.StringVar(&cfg.DataDir, "data-dir", "runs/local", "one folder per process, logs, progress")
	f.IntVar(&cfg.Actors, "actors", cfg.Actors, "number of actors")
	f.IntVar(&cfg.Coordinators, "coordinator-nodes", 1, "raft coordinator nodes (3 tolerate losing one)")
	f.StringVar(&cfg.Algo, "algo", cfg.Algo, "mcts, cispo, grpo or best-of-n")
	f.IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "coordinator i on it +i, raft +100+i, learner +200, actor i +300+i")
	f.DurationVar(&cfg.Duration, "duration", 0, "stop after this long (0: when the learner stops)")
	f.DurationVar(&cfg.Progress, "progress", cfg.Progress, "how often to print progress")
	f.StringVar(&learnerArgs, "learner-args", "", "extra flags for the learner")
	f.StringVar(&actorArgs, "actor-args", "", "extra flags for every actor")
	f.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	_ = cmd.MarkFlagRequired("model")
	return cmd
}
