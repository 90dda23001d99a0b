package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"tsd/mcts"
	"tsd/mcts/treesvg"
)

func newMctsCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "mcts",
		Short: "Monte-Carlo tree search over reasoning steps, and its tools",
	}
	cmd.AddCommand(newMctsViewCmd())
	return cmd
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
