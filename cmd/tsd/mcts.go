package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"tsd/countdown"
	"tsd/episode"
	"tsd/mcts"
	"tsd/mcts/treesvg"
)

func newMctsCmd() *cobra.Command {
	var (
		mf          modelFlags
		sf          = searchFlags{cfg: mcts.DefaultConfig()}
		problem     string
		style       string
		simulations int
		export      string
		asJSON      bool
	)
	cmd := &cobra.Command{
		Use:   "mcts",
		Short: "Run one tree search over reasoning steps for a Countdown problem (and tools: view)",
		Long: `mcts runs one pUCT search with the model for one problem and prints the chosen trajectory and its
reward; --export writes the whole tree as JSON (draw it with "tsd mcts view").`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p countdown.Problem
			if err := json.Unmarshal([]byte(problem), &p); err != nil {
				return fmt.Errorf("--problem: %v", err)
			}
			if err := p.Validate(); err != nil {
				return fmt.Errorf("--problem: %w", err)
			}
			ps, err := countdown.ParsePromptStyle(style)
			if err != nil {
				return err
			}
			cfg := sf.cfg
			if simulations > 0 {
				cfg.Iterations = (simulations + cfg.Workers - 1) / cfg.Workers
			}
			if err := cfg.Validate(); err != nil {
				return err
			}
			return runSearch(cmd, &mf, cfg, p, ps, export, asJSON)
		},
	}
	mf.register(cmd)
	sf.register(cmd)
	cmd.Flags().StringVar(&problem, "problem", "", `the problem, e.g. {"input":[5,13,5,9],"target":31}`)
	cmd.Flags().StringVar(&style, "prompt-style", "full", "full or compact (tiny models)")
	cmd.Flags().IntVar(&simulations, "simulations", 0, "total simulations (sets --iterations to simulations/workers)")
	cmd.Flags().StringVar(&export, "export", "", "write the search tree as JSON to this file")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.AddCommand(newMctsViewCmd())
	return cmd
}

// runSearch loads the model and runs one search.
func runSearch(cmd *cobra.Command, mf *modelFlags, cfg mcts.Config, p countdown.Problem, style countdown.PromptStyle, export string, asJSON bool) error {
	pol, tok, closePolicy, err := mf.openPolicy(cmd)
	if err != nil {
		return err
	}
	defer closePolicy()
	t := style.Task(p)
	res, err := episode.Search(cmd.Context(), pol, pol, t, episode.Prompt(tok, t), cfg)
	if err != nil {
		return err
	}
	if export != "" {
		b, err := json.Marshal(res.Tree.Export())
		if err != nil {
			return err
		}
		if err := os.WriteFile(export, b, 0o644); err != nil {
			return err
		}
	}
	tr := res.Trajectory
	out := cmd.OutOrStdout()
	if asJSON {
		return json.NewEncoder(out).Encode(map[string]any{
			"problem": p, "trajectory": tr, "correct": res.Correct, "stats": res.Stats})
	}
	fmt.Fprintf(out, "%s\n\nreward %.3f  correct %t  terminal %t\n", tr.Text, tr.Reward, res.Correct, tr.Terminal)
	st := res.Stats
	fmt.Fprintf(out, "%d simulations, %d model calls, %d nodes, depth %d, %v (%.2f%% bookkeeping)\n",
		st.Simulations, st.Expansions, st.Nodes, st.MaxDepth, st.Wall.Round(time.Millisecond),
		100*st.Bookkeeping.Seconds()/max(st.Wall.Seconds(), 1e-9))
	return nil
}

// searchFlags expose every knob of the search.
type searchFlags struct{ cfg mcts.Config }

// register binds the flags; a step stop left to the task shows as Countdown's.
func (s *searchFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	c := &s.cfg
	if c.StopText == "" {
		c.StopText = countdown.Task{}.StepStop()
	}
	f.IntVar(&c.Samples, "mcts-samples", c.Samples, "K: continuations sampled per expansion")
	f.Float64Var(&c.Temperature, "mcts-temperature", c.Temperature, "sampling temperature of expansions")
	f.IntVar(&c.StepMaxTokens, "step-max-tokens", c.StepMaxTokens, "longest reasoning step, in tokens")
	f.StringVar(&c.StopText, "step-stop", c.StopText, "text that ends a reasoning step")
	f.IntVar(&c.MaxNewTokens, "search-max-new-tokens", c.MaxNewTokens, "token budget of a whole completion")
	f.Float64Var(&c.CPUCT, "c-puct", c.CPUCT, "pUCT exploration constant")
	f.Float64Var(&c.UnvisitedQ, "unvisited-q", c.UnvisitedQ, "Q of an unvisited child")
	f.IntVar(&c.Workers, "workers", c.Workers, "W: simulations in flight per tree (virtual loss)")
	f.IntVar(&c.Iterations, "iterations", c.Iterations, "simulations per worker")
	f.IntVar(&c.VirtualVisits, "virtual-visits", c.VirtualVisits, "visits a pending simulation adds")
	f.Float64Var(&c.VirtualLoss, "virtual-loss", c.VirtualLoss, "value each virtual visit carries, negated")
	f.Uint64Var(&c.Seed, "search-seed", c.Seed, "search seed")
}

func newMctsViewCmd() *cobra.Command {
	var (
		in, out string
		opt     = treesvg.DefaultOptions()
	)
	cmd := &cobra.Command{
		Use:   "view",
		Short: "Draw an exported search tree (JSON) as a self-contained SVG",
		Long: `view reads a tree exported by a search (JSON), checks its invariants and draws it as one SVG
file: nodes sized by visits and coloured by mean value, edges labelled with their step's text, the
chosen path in blue. Hover a node for its numbers and full step.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opt.Validate(); err != nil {
				return err
			}
			tree, err := readTree(in, cmd.InOrStdin())
			if err != nil {
				return err
			}
			return writeSVG(out, cmd.OutOrStdout(), tree, opt)
		},
	}
	f := cmd.Flags()
	f.StringVar(&in, "in", "", "exported tree JSON to draw (- for stdin)")
	f.StringVar(&out, "out", "", "SVG file to write (- for stdout)")
	f.IntVar(&opt.MinVisits, "min-visits", opt.MinVisits, "hide nodes with fewer visits (0 draws unvisited children too)")
	f.IntVar(&opt.LabelRunes, "label-runes", opt.LabelRunes, "characters of step text shown on an edge")
	_ = cmd.MarkFlagRequired("in")
	_ = cmd.MarkFlagRequired("out")
	return cmd
}

func readTree(path string, stdin io.Reader) (*mcts.Export, error) {
	if path == "-" {
		return mcts.ReadExport(stdin)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tree, err := mcts.ReadExport(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return tree, nil
}

func writeSVG(path string, stdout io.Writer, tree *mcts.Export, opt treesvg.Options) error {
	if path == "-" {
		return treesvg.Render(stdout, tree, opt)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := treesvg.Render(f, tree, opt); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
