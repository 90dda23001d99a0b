package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tsd/mcts"
	"tsd/mcts/treesvg"
)

func TestMctsView(t *testing.T) {
	tree := filepath.Join("..", "..", "mcts", "testdata", "lattice.json")
	golden, err := os.ReadFile(filepath.Join("..", "..", "mcts", "treesvg", "testdata", "lattice.svg"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(tree)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("file to file", func(t *testing.T) {
		out := filepath.Join(t.TempDir(), "tree.svg")
		if _, err := runTSD(t, "", "mcts", "view", "--in", tree, "--out", out); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, golden) {
			t.Error("SVG differs from the treesvg golden file")
		}
	})
	t.Run("stdin to stdout", func(t *testing.T) {
		got, err := runTSD(t, string(raw), "mcts", "view", "--in", "-", "--out", "-")
		if err != nil {
			t.Fatal(err)
		}
		if got != string(golden) {
			t.Error("SVG differs from the treesvg golden file")
		}
	})
	t.Run("options from the environment", func(t *testing.T) {
		t.Setenv("TSD_MIN_VISITS", "0")
		got, err := runTSD(t, string(raw), "mcts", "view", "--in", "-", "--out", "-")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(got, "81 nodes (81 shown") {
			t.Errorf("TSD_MIN_VISITS=0 did not draw every node: %.200s", got)
		}
	})
}

func TestMctsViewErrors(t *testing.T) {
	dir := t.TempDir()
	broken := filepath.Join(dir, "broken.json")
	if err := os.WriteFile(broken, []byte(`{"chosen":[0],"nodes":[{"id":0,"parent":-1,"visits":3}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out.svg")
	for _, tc := range []struct {
		name string
		args []string
		want error
	}{
		{"tree breaks an invariant", []string{"--in", broken, "--out", out}, mcts.ErrBadExport},
		{"missing input", []string{"--in", filepath.Join(dir, "none.json"), "--out", out}, os.ErrNotExist},
		{"bad option", []string{"--in", broken, "--out", out, "--label-runes", "0"}, treesvg.ErrBadOptions},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runTSD(t, "", append([]string{"mcts", "view"}, tc.args...)...)
			if !errors.Is(err, tc.want) {
				t.Errorf("err = %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a failed view left %s behind", out)
			}
		})
	}
	if _, err := runTSD(t, "", "mcts", "view", "--out", out); err == nil {
		t.Error("view without --in succeeded")
	}
}
