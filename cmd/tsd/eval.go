package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"tsd/countdown"
	"tsd/eval"
	"tsd/mcts"
)

func newEvalCmd() *cobra.Command {
	var (
		mf                 modelFlags
		cfg                = eval.DefaultConfig()
		sf                 = searchFlags{cfg: mcts.DefaultConfig()}
		data, out, summary string
		style              string
		limit              int
		search, keep       bool
	)
	cmd := &cobra.Command{
		Use:   "eval",
		Short: "Measure mean@k (exact answers, no search by default), pass@k and mean dense reward on Countdown",
		Long: `eval samples --k completions per problem of --data at --temperature (the source: 16 at 0.2,
top-p 1, up to 512 new tokens) and grades them: mean@k is the mean sparse reward (the answer equals
the target exactly), pass@k the share of problems with an exact answer among k, and the mean dense
reward. With --search each sample is the trajectory of a whole tree search instead (MCTS at test
time; the search flags apply). Prints a progress bar, then the JSON summary; --out writes one JSON
line per problem.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.Style, err = countdown.ParsePromptStyle(style); err != nil {
				return err
			}
			problems, err := countdown.Load(data)
			if err != nil {
				return err
			}
			if limit > 0 && limit < len(problems) {
				problems = problems[:limit]
			}
			pol, tok, closePolicy, err := mf.openPolicy(cmd)
			if err != nil {
				return err
			}
			defer closePolicy()
			bar := newBar(cmd.ErrOrStderr(), len(problems))
			var s eval.Summary
			var results []eval.Problem
			if search {
				s, results, err = eval.RunSearch(cmd.Context(), pol, tok, problems, cfg, sf.cfg, keep || out != "", bar.update)
			} else {
				s, results, err = eval.Run(cmd.Context(), pol, tok, problems, cfg, keep || out != "", bar.update)
			}
			bar.done()
			if err != nil {
				return err
			}
			if out != "" {
				if err := writeJSONL(out, results); err != nil {
					return err
				}
			}
			b, _ := json.MarshalIndent(s, "", "  ")
			if summary != "" {
				if err := os.WriteFile(summary, append(b, '\n'), 0o644); err != nil {
					return err
				}
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(b))
			return nil
		},
	}
	mf.register(cmd)
	sf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&data, "data", "data/countdown/test.jsonl", "problems (JSONL)")
	f.IntVar(&limit, "limit", 0, "evaluate only the first N problems (0: all)")
	f.IntVar(&cfg.K, "k", cfg.K, "samples per problem")
	f.Float64Var(&cfg.Temperature, "temperature", cfg.Temperature, "sampling temperature")
	f.Float64Var(&cfg.TopP, "top-p", cfg.TopP, "nucleus mass")
	f.IntVar(&cfg.MaxNewTokens, "max-new-tokens", cfg.MaxNewTokens, "tokens per completion at most")
	f.IntVar(&cfg.Batch, "batch", cfg.Batch, "problems per model call")
	f.Int64Var(&cfg.Seed, "seed", cfg.Seed, "sampling seed")
	f.StringVar(&style, "prompt-style", "full", "full or compact (tiny models)")
	f.BoolVar(&search, "search", false, "run a tree search per sample (MCTS at test time)")
	f.BoolVar(&keep, "keep-completions", false, "include completion texts in --out")
	f.StringVar(&out, "out", "", "write per-problem results (JSONL) here")
	f.StringVar(&summary, "summary", "", "also write the JSON summary here")
	return cmd
}

func writeJSONL(path string, results []eval.Problem) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, r := range results {
		if err := enc.Encode(r); err != nil {
			f.Close()
			return err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// bar is a one-line progress bar on a terminal-ish writer.
type bar struct {
	w     io.Writer
	total int
	start time.Time
	last  time.Time
}

func newBar(w io.Writer, total int) *bar { return &bar{w: w, total: total, start: time.Now()} }

func (b *bar) update(done int, s eval.Summary) {
	if time.Since(b.last) < 200*time.Millisecond && done < b.total {
		return
	}
	b.last = time.Now()
	const width = 30
	fill := width * done / max(b.total, 1)
	eta := time.Duration(0)
	if done > 0 {
		eta = time.Duration(float64(time.Since(b.start)) * float64(b.total-done) / float64(done))
	}
	fmt.Fprintf(b.w, "\reval [%-*s] %d/%d  mean@%d %5.1f%%  pass@%d %5.1f%%  %.0f tok/s  eta %s ",
		width, bar30(fill), done, b.total, s.K, 100*s.MeanAtK, s.K, 100*s.PassAtK, s.TokensPerS, eta.Round(time.Second))
}

func bar30(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = '='
	}
	return string(b)
}

func (b *bar) done() { fmt.Fprintln(b.w) }
