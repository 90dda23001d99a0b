package demo

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tsd/algo"
	"tsd/eval"
	"tsd/local"
)

func TestProblemsDisjoint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.TrainProblems, cfg.TestProblems = 500, 100
	train, test, err := problems(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(test) != 100 || len(train) == 0 {
		t.Fatalf("%d test, %d train", len(test), len(train))
	}
	seen := map[string]bool{}
	for _, p := range test {
		seen[fmt.Sprint(p.Input, p.Target)] = true
	}
	for _, p := range train {
		if seen[fmt.Sprint(p.Input, p.Target)] {
			t.Fatalf("%v is in both sets", p)
		}
	}
	again, _, _ := problems(cfg)
	if fmt.Sprint(again) != fmt.Sprint(train) {
		t.Fatal("same seed, different problems")
	}
}

func TestRLArgsPerAlgo(t *testing.T) {
	want := map[string]struct{ flag, row string }{
		"mcts":      {"--iterations", "MCTS distillation"},
		"cispo":     {"--group-size", "CISPO (16 samples/prompt)"},
		"grpo":      {"--group-size", "GRPO (16 samples/prompt)"},
		"best-of-n": {"--best-of", "best-of-N distilled (N=64)"},
	}
	for _, a := range algo.All {
		w, ok := want[a.Name]
		if !ok {
			t.Fatalf("no expectation for algorithm %s", a.Name)
		}
		if _, args := rlArgs(a, 1); !strings.Contains(strings.Join(args, " "), w.flag) {
			t.Errorf("%s actor args %v lack %s", a.Name, args, w.flag)
		}
		if got := rowName(a); got != w.row {
			t.Errorf("%s row %q, want %q", a.Name, got, w.row)
		}
	}
}

// TestReport renders the table and the plot from a synthetic run.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	prog := filepath.Join(dir, "progress.jsonl")
	f, err := os.Create(prog)
	if err != nil {
		t.Fatal(err)
	}
	enc := json.NewEncoder(f)
	for i := 0; i < 5; i++ {
		enc.Encode(local.ProgressRecord{Seconds: float64(15 * i), Step: uint64(10 * i), RewardMean: -0.5 + 0.1*float64(i)})
	}
	f.Close()
	r := &Results{Config: DefaultConfig(), Rows: []Row{
		{Name: "before RL (SFT warm start)", Summary: eval.Summary{K: 16, MeanAtK: 0.05, PassAtK: 0.2, Problems: 200}},
		{Name: "MCTS distillation", Summary: eval.Summary{K: 16, MeanAtK: 0.15, PassAtK: 0.3, Problems: 200}, Steps: 40, Rollouts: 1280, Progress: prog},
	}}
	table := r.Table()
	for _, want := range []string{"| before RL (SFT warm start) | 5.0% | 20.0% |", "| MCTS distillation | 15.0% | 30.0% |", "| 40 | 1280 |"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
	if err := r.Write(dir); err != nil {
		t.Fatal(err)
	}
	pf, err := os.Open(filepath.Join(dir, "plot.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	img, err := png.Decode(pf)
	if err != nil || img.Bounds().Dx() < 500 {
		t.Fatalf("plot.png: %v, %v", err, img.Bounds())
	}
}
