package treesvg_test

import (
	"bytes"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tsd/mcts"
	"tsd/mcts/treesvg"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// lattice is the mcts package's golden export: a small deterministic search.
func lattice(t *testing.T) *mcts.Export {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "testdata", "lattice.json"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	e, err := mcts.ReadExport(f)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func render(t *testing.T, e *mcts.Export, opt treesvg.Options) string {
	t.Helper()
	var buf bytes.Buffer
	if err := treesvg.Render(&buf, e, opt); err != nil {
		t.Fatal(err)
	}
	return buf.String()
}

func TestRenderGolden(t *testing.T) {
	got := render(t, lattice(t), treesvg.DefaultOptions())
	path := filepath.Join("testdata", "lattice.svg")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("SVG differs from %s; rerun with -update if the change is intended", path)
	}
}

// elements parses svg as XML (failing the test if it is not well formed) and counts elements by
// name and by class.
func elements(t *testing.T, svg string) map[string]int {
	t.Helper()
	count := map[string]int{}
	dec := xml.NewDecoder(strings.NewReader(svg))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return count
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			count[se.Name.Local]++
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					for _, c := range strings.Fields(a.Value) {
						count["."+c]++
					}
				}
			}
		}
	}
}

func TestRenderShowsTheTree(t *testing.T) {
	e := lattice(t)
	visited, terminalVisited := 0, 0
	for _, n := range e.Nodes {
		if n.Visits >= 1 || n.ID == 0 {
			visited++
			if n.Terminal {
				terminalVisited++
			}
		}
	}
	for _, tc := range []struct {
		name      string
		minVisits int
		wantNodes int
	}{
		{"visited nodes", 1, visited},
		{"every node", 0, len(e.Nodes)},
		{"root and chosen path", 1 << 30, len(e.Chosen)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opt := treesvg.DefaultOptions()
			opt.MinVisits = tc.minVisits
			count := elements(t, render(t, e, opt))
			if got := count["g"]; got != tc.wantNodes {
				t.Errorf("%d nodes drawn, want %d", got, tc.wantNodes)
			}
			if got := count["path"]; got != tc.wantNodes-1 {
				t.Errorf("%d edges drawn, want %d", got, tc.wantNodes-1)
			}
			if got := count[".c"]; got != len(e.Chosen)-1 {
				t.Errorf("%d chosen edges, want %d", got, len(e.Chosen)-1)
			}
			if got := count[".p"]; got != len(e.Chosen) {
				t.Errorf("%d chosen nodes, want %d", got, len(e.Chosen))
			}
		})
	}
	if got := elements(t, render(t, e, treesvg.DefaultOptions()))["rect"]; got != 1+15+terminalVisited {
		t.Errorf("%d rects, want background + 15 key cells + %d terminal nodes", got, terminalVisited)
	}
}

// Step text is model output: markup in it must come out as text, and long steps are cut.
func TestRenderEscapesAndTruncates(t *testing.T) {
	r := 1.0
	e := &mcts.Export{Chosen: []mcts.NodeID{0, 1}, Nodes: []mcts.ExportNode{
		{ID: 0, Parent: -1, Visits: 1, ValueSum: 1, Expanded: true},
		{ID: 1, Parent: 0, Step: "<step>3 & 4 \"x\"</step>\n<answer>" + strings.Repeat("9", 40), Tokens: 9, Prior: 1,
			Visits: 1, ValueSum: 1, Value: 1, Terminal: true, Reward: &r},
	}}
	svg := render(t, e, treesvg.Options{MinVisits: 1, LabelRunes: 20})
	elements(t, svg)
	for _, want := range []string{"&lt;step&gt;3 &amp; 4 &#34;x&#34;&lt;/st…", "&lt;answer&gt;" + strings.Repeat("9", 40)} {
		if !strings.Contains(svg, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestRenderErrors(t *testing.T) {
	e := lattice(t)
	for _, opt := range []treesvg.Options{{MinVisits: -1, LabelRunes: 5}, {MinVisits: 1, LabelRunes: 0}} {
		if err := treesvg.Render(io.Discard, e, opt); !errors.Is(err, treesvg.ErrBadOptions) {
			t.Errorf("%+v: Render() = %v, want ErrBadOptions", opt, err)
		}
	}
	e.Nodes[1].Visits++
	if err := treesvg.Render(io.Discard, e, treesvg.DefaultOptions()); !errors.Is(err, mcts.ErrBadExport) {
		t.Errorf("Render(broken tree) = %v, want ErrBadExport", err)
	}
}
