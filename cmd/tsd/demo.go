package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"tsd/demo"
)

func newDemoCmd() *cobra.Command {
	cfg := demo.DefaultConfig()
	var compare bool
	var logLevel string
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "The embedded default: warm-start a tiny model, run MCTS distillation on loopback, evaluate, report",
		Long: `demo reproduces the source's experiment in miniature on a CPU: a tiny Qwen2-shaped model and
tokenizer, a supervised warm start on solver-written worked solutions (easy Countdown), mean@16
before, the real distributed system (raft coordinator, learner, actors over gRPC on loopback) for
--budget per algorithm, mean@16 after, a Markdown table, results.json and plot.png in --dir.
--compare runs MCTS distillation, CISPO and best-of-N from the same warm start with equal budgets,
and compares MCTS at test time with best-of-N at the same token budget.`,
		Args: cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), logLevel, "text")
			if err != nil {
				return err
			}
			if compare {
				cfg.Algos, cfg.TestTime = []string{"mcts", "cispo", "best-of-n"}, true
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			res, err := demo.Run(ctx, cfg, cmd.OutOrStdout(), log)
			if err != nil {
				return err
			}
			res.Print(cmd.OutOrStdout())
			if err := res.Write(cfg.Dir); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s, %s and %s (took %s)\n", filepath.Join(cfg.Dir, "results.md"),
				filepath.Join(cfg.Dir, "results.json"), filepath.Join(cfg.Dir, "plot.png"), res.Took.Round(1e9))
			return nil
		}),
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", cfg.Dir, "output directory")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "seed of data, model, warm start and training")
	f.StringSliceVar(&cfg.Algos, "algo", cfg.Algos, "RL algorithms to run: mcts, cispo, grpo, best-of-n")
	f.BoolVar(&compare, "compare", false, "run mcts, cispo and best-of-n and the test-time comparison")
	f.BoolVar(&cfg.TestTime, "test-time", false, "also compare MCTS at test time with best-of-N at equal tokens")
	f.DurationVar(&cfg.RLBudget, "budget", cfg.RLBudget, "wall-clock RL budget per algorithm")
	f.IntVar(&cfg.SFT.Steps, "sft-steps", cfg.SFT.Steps, "warm-start steps")
	f.IntVar(&cfg.TrainProblems, "train-problems", cfg.TrainProblems, "generated training problems")
	f.IntVar(&cfg.TestProblems, "test-problems", cfg.TestProblems, "generated held-out problems")
	f.IntVar(&cfg.Eval.K, "k", cfg.Eval.K, "samples per held-out problem")
	f.IntVar(&cfg.Actors, "actors", cfg.Actors, "actors during RL")
	f.IntVar(&cfg.BasePort, "base-port", cfg.BasePort, "first loopback port")
	f.IntVar(&cfg.Threads, "threads", cfg.Threads, "libtorch threads of the warm start and evaluation")
	f.StringVar(&logLevel, "log-level", "warn", "debug, info, warn or error")
	return cmd
}
