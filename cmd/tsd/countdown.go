package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"

	"github.com/spf13/cobra"

	"tsd/countdown"
)

func newCountdownCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "countdown",
		Short: "Countdown environment: grade completions, generate and solve problems",
	}
	cmd.AddCommand(newCountdownGradeCmd(), newCountdownGenCmd(), newCountdownSolveCmd())
	return cmd
}

func newCountdownGradeCmd() *cobra.Command {
	var in, out string
	cmd := &cobra.Command{
		Use:   "grade",
		Short: `Grade JSONL {"input","target","completion"} lines: writes {"reward","correct"} per line`,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withIO(cmd, in, out, countdown.GradeJSONL)
		},
	}
	addIOFlags(cmd, &in, &out)
	return cmd
}

func newCountdownSolveCmd() *cobra.Command {
	var in, out string
	cmd := &cobra.Command{
		Use:   "solve",
		Short: "Solve JSONL problems: writes the fewest-operation answer and a worked <step> completion",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withIO(cmd, in, out, countdown.SolveJSONL)
		},
	}
	addIOFlags(cmd, &in, &out)
	return cmd
}

func newCountdownGenCmd() *cobra.Command {
	var (
		out    string
		seed   uint64
		preset string
		cfg    countdown.GenConfig
	)
	cmd := &cobra.Command{
		Use:   "gen",
		Short: "Generate solvable JSONL problems from a seed",
		Long: `Generate solvable problems. --preset picks the defaults (default: like the source's sets,
4 numbers in 1..13, 1-3 operations; easy: 3 numbers in 1..9, 1-2 operations, targets up to 100);
the other flags override single settings. Difficulty is the fewest operations any solution needs.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := genConfig(cmd, preset, cfg)
			if err != nil {
				return err
			}
			ps, err := countdown.Generate(c, rand.New(rand.NewPCG(seed, 0)))
			if err != nil {
				return err
			}
			return withIO(cmd, "", out, func(_ io.Reader, w io.Writer) error { return countdown.Write(w, ps) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "-", "output JSONL file (- for stdout)")
	f.Uint64Var(&seed, "seed", 1, "random seed; the same seed and settings give the same problems")
	f.StringVar(&preset, "preset", "default", "base settings: default or easy")
	f.IntVar(&cfg.Count, "n", 0, "number of problems (default: the preset's, 1000)")
	f.IntVar(&cfg.Numbers, "numbers", 0, "input numbers per problem (default: the preset's)")
	f.IntVar(&cfg.Min, "min", 0, "smallest input number (default: the preset's)")
	f.IntVar(&cfg.Max, "max", 0, "largest input number (default: the preset's)")
	f.IntVar(&cfg.MinOps, "min-ops", 0, "fewest operations a target may need (default: the preset's)")
	f.IntVar(&cfg.MaxOps, "max-ops", 0, "most operations a target may need (default: the preset's)")
	f.IntVar(&cfg.MaxTarget, "max-target", 0, "largest target (default: the preset's)")
	return cmd
}

// genConfig starts from the preset and takes every generator flag that was set.
func genConfig(cmd *cobra.Command, preset string, flags countdown.GenConfig) (countdown.GenConfig, error) {
	var c countdown.GenConfig
	switch preset {
	case "default":
		c = countdown.DefaultGenConfig()
	case "easy":
		c = countdown.EasyGenConfig()
	default:
		return c, fmt.Errorf("--preset %q: want default or easy", preset)
	}
	for name, pair := range map[string][2]*int{
		"n": {&c.Count, &flags.Count}, "numbers": {&c.Numbers, &flags.Numbers},
		"min": {&c.Min, &flags.Min}, "max": {&c.Max, &flags.Max},
		"min-ops": {&c.MinOps, &flags.MinOps}, "max-ops": {&c.MaxOps, &flags.MaxOps},
		"max-target": {&c.MaxTarget, &flags.MaxTarget},
	} {
		if cmd.Flags().Changed(name) {
			*pair[0] = *pair[1]
		}
	}
	return c, c.Validate()
}

func addIOFlags(cmd *cobra.Command, in, out *string) {
	cmd.Flags().StringVar(in, "in", "-", "input JSONL file (- for stdin)")
	cmd.Flags().StringVar(out, "out", "-", "output JSONL file (- for stdout)")
}

// withIO opens in and out ("-" or "" meaning the command's stdin/stdout) and runs fn on them.
func withIO(cmd *cobra.Command, in, out string, fn func(io.Reader, io.Writer) error) (err error) {
	r, w := cmd.InOrStdin(), cmd.OutOrStdout()
	if in != "" && in != "-" {
		f, err := os.Open(in)
		if err != nil {
			return err
		}
		defer f.Close()
		r = f
	}
	if out != "" && out != "-" {
		f, err := os.Create(out)
		if err != nil {
			return err
		}
		defer func() {
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
		w = f
	}
	if err := fn(r, w); err != nil {
		if in != "" && in != "-" {
			return fmt.Errorf("%s: %w", in, err)
		}
		return err
	}
	return nil
}
