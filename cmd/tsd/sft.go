package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"tsd/countdown"
	"tsd/sft"
)

func newSFTCmd() *cobra.Command {
	var (
		mf               modelFlags
		cfg              = sft.DefaultConfig()
		out, problems    string
		genPreset, style string
		genCount         int
		genSeed          uint64
		every            int
	)
	cmd := &cobra.Command{
		Use:   "sft",
		Short: "Warm-start a model by supervised fine-tuning on solver-written worked solutions",
		Long: `sft trains --model on worked Countdown solutions (the exact solver's steps and answer) for --steps
optimizer steps or --duration, and writes the result to --out (Hugging Face layout, tokenizer
beside it). Problems come from --problems, or are generated (--gen-preset easy|default).`,
		Args: cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out is required")
			}
			if every < 0 {
				return fmt.Errorf("--log-every %d < 0", every)
			}
			ps, err := countdown.ParsePromptStyle(style)
			if err != nil {
				return err
			}
			probs, err := sftProblems(problems, genPreset, genCount, genSeed)
			if err != nil {
				return err
			}
			m, dir, err := mf.open(cmd, true)
			if err != nil {
				return err
			}
			defer m.Close()
			tok, err := mf.openTokenizer(dir)
			if err != nil {
				return err
			}
			examples, skipped, err := sft.Examples(tok, ps, probs)
			if err != nil {
				return err
			}
			w := cmd.ErrOrStderr()
			fmt.Fprintf(w, "sft: %d examples (%d unsolvable skipped)\n", len(examples), skipped)
			steps, err := sft.Train(cmd.Context(), m, examples, cfg, func(step int, loss float64, took time.Duration) {
				if every > 0 && step%every == 0 {
					fmt.Fprintf(w, "sft: step %4d  loss %.4f  %s\n", step, loss, took.Round(time.Second))
				}
			})
			if err != nil {
				return err
			}
			if err := m.Save(out, gotch.Float); err != nil {
				return err
			}
			if err := copyTokenizer(dir, out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s after %d steps\n", out, steps)
			return nil
		}),
	}
	mf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "directory to write the fine-tuned model to")
	f.StringVar(&problems, "problems", "", "problems JSONL (default: generate)")
	f.StringVar(&genPreset, "gen-preset", "easy", "generator preset when --problems is empty: easy or default")
	f.IntVar(&genCount, "gen-count", 20000, "problems to generate")
	f.Uint64Var(&genSeed, "gen-seed", 1, "generator seed")
	f.StringVar(&style, "prompt-style", "compact", "full or compact")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "sequences per step")
	f.IntVar(&cfg.Steps, "steps", cfg.Steps, "optimizer steps (0: until --duration)")
	f.DurationVar(&cfg.Duration, "duration", 0, "wall-clock budget instead of --steps")
	f.Float64Var(&cfg.Optim.LR, "lr", cfg.Optim.LR, "learning rate")
	f.Int64Var(&cfg.Optim.WarmupSteps, "warmup-steps", cfg.Optim.WarmupSteps, "linear warmup steps")
	f.Int64Var(&cfg.Optim.DecaySteps, "decay-steps", cfg.Optim.DecaySteps, "step where linear decay reaches --final-lr (0: none)")
	f.Float64Var(&cfg.Optim.FinalLR, "final-lr", cfg.Optim.FinalLR, "learning rate after decay")
	f.Float64Var(&cfg.Optim.MaxGradNorm, "max-grad-norm", cfg.Optim.MaxGradNorm, "grad-norm clip")
	f.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "example order seed")
	f.IntVar(&every, "log-every", 25, "print the loss every this many steps (0: never)")
	return cmd
}

// sftProblems loads --problems or generates them.
func sftProblems(path, preset string, n int, seed uint64) ([]countdown.Problem, error) {
	if path != "" {
		return countdown.Load(path)
	}
	var gc countdown.GenConfig
	switch preset {
	case "easy":
		gc = countdown.EasyGenConfig()
	case "default":
		gc = countdown.DefaultGenConfig()
	default:
		return nil, fmt.Errorf("--gen-preset %q: want easy or default", preset)
	}
	gc.Count = n
	return countdown.Generate(gc, rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)))
}
