package demo

import (
	"encoding/json"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
	for algo, want := range map[string]string{"mcts": "--iterations", "cispo": "--group-size", "best-of-n": "--best-of"} {
		_, a := rlArgs(algo, 1)
		if !strings.Contains(strings.Join(a, " "), want) {
			t.Errorf("%s actor args %v lack %s", algo, a, want)
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
