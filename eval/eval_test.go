package eval

import (
	"context"
	"math"
	"testing"

	"tsd/countdown"
	"tsd/model"
	"tsd/tokenizer"
)

// scripted answers every prompt with the same completions, in order.
type scripted struct {
	tok   *tokenizer.BPE
	texts []string
	calls int
}

func (s *scripted) Sample(_ context.Context, prompts [][]int32, n int, _ model.SampleOptions) ([][]model.Completion, error) {
	s.calls++
	out := make([][]model.Completion, len(prompts))
	for i := range prompts {
		for j := 0; j < n; j++ {
			out[i] = append(out[i], model.Completion{Tokens: s.tok.Encode(s.texts[j%len(s.texts)])})
		}
	}
	return out, nil
}

func tinyTok(t *testing.T) *tokenizer.BPE {
	t.Helper()
	dir := t.TempDir()
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestRunScores(t *testing.T) {
	tok := tinyTok(t)
	problems := []countdown.Problem{{Input: []int{2, 3}, Target: 6}, {Input: []int{4, 5}, Target: 20}, {Input: []int{1, 9}, Target: 90}}
	s := &scripted{tok: tok, texts: []string{"<answer>2*3</answer>", "<answer>4*5</answer>", "no answer", "<answer>7</answer>"}}
	cfg := Config{K: 4, Temperature: 0.2, TopP: 1, MaxNewTokens: 8, Batch: 2, Style: countdown.Compact}
	var seen []int
	sum, per, err := Run(context.Background(), s, tok, problems, cfg, true, func(done int, _ Summary) { seen = append(seen, done) })
	if err != nil {
		t.Fatal(err)
	}
	if s.calls != 2 || len(seen) != 2 || seen[1] != 3 {
		t.Fatalf("batches: %d calls, progress %v", s.calls, seen)
	}
	// problem 0 (target 6): 2*3 correct; 4*5 uses numbers not in the input (-0.9); none (-1); 7 uses 7 (-0.9).
	// problem 1 (target 20): 2*3 invalid (-0.9); 4*5 correct; none (-1); 7 invalid (-0.9).
	// problem 2 (target 90): all invalid or missing.
	wantCorrect := []int{1, 1, 0}
	for i, r := range per {
		if r.Correct != wantCorrect[i] || r.Samples != 4 || len(r.Completions) != 4 {
			t.Errorf("problem %d: %+v", i, r)
		}
	}
	if got := sum.MeanAtK; math.Abs(got-2.0/12) > 1e-12 {
		t.Errorf("mean@4 = %v, want 2/12", got)
	}
	if got := sum.PassAtK; math.Abs(got-2.0/3) > 1e-12 {
		t.Errorf("pass@4 = %v, want 2/3", got)
	}
	wantDense := (1 - 0.9 - 1 - 0.9 + (-0.9 + 1 - 1 - 0.9) + (-0.9 - 0.9 - 1 - 0.9)) / 12
	if math.Abs(sum.MeanDense-wantDense) > 1e-9 {
		t.Errorf("mean dense = %v, want %v", sum.MeanDense, wantDense)
	}
}

func TestConfigValidate(t *testing.T) {
	bad := []Config{{K: 0}, {K: 1, Temperature: -1}, {K: 1, TopP: 0}, {K: 1, TopP: 1, MaxNewTokens: 0}}
	for _, c := range bad {
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
}
