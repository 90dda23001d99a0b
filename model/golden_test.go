package model

import (
	"encoding/json"
	"math"
	"os"
	"slices"
	"testing"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

// testdata/qwen2-tiny is the shared fixture: a random tiny Qwen2 checkpoint and float64 logits from
// an independent statement of Hugging Face's forward pass (see its NOTICE).
const tinyDir = "testdata/qwen2-tiny"

type goldenCase struct {
	IDs    []int32     `json:"ids"`
	Logits [][]float64 `json:"logits"`
	Greedy []int32     `json:"greedy"`
}

func readGolden(t *testing.T) []goldenCase {
	t.Helper()
	b, err := os.ReadFile(tinyDir + "/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Cases []goldenCase `json:"cases"`
	}
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	return g.Cases
}

func loadTiny(t testing.TB, opts Options) *Qwen2 {
	t.Helper()
	m, err := Load(tinyDir, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestGoldenLogits: every position's logits within 1e-4 of the float64 reference, each sequence
// alone and all three as one left-padded batch.
func TestGoldenLogits(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	cases := readGolden(t)
	var all [][]int32
	for _, c := range cases {
		all = append(all, c.IDs)
	}
	batch, err := m.Logits(all)
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		alone, err := m.Logits([][]int32{c.IDs})
		if err != nil {
			t.Fatal(err)
		}
		if e := maxAbsDiff(alone[0], c.Logits); e > 1e-4 {
			t.Errorf("case %d alone: max |logit error| = %g > 1e-4", i, e)
		}
		if e := maxAbsDiff(batch[i], c.Logits); e > 1e-4 {
			t.Errorf("case %d in a left-padded batch: max |logit error| = %g > 1e-4", i, e)
		}
	}
}

// TestGoldenGreedy: 8 greedy tokens after each sequence match the reference exactly.
func TestGoldenGreedy(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	for i, c := range readGolden(t) {
		cache, err := m.Prefill([][]int32{c.IDs})
		if err != nil {
			t.Fatal(err)
		}
		out, err := m.Generate(cache, SampleOptions{MaxNewTokens: len(c.Greedy)}, nil)
		cache.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(out[0].Tokens, c.Greedy) {
			t.Errorf("case %d: greedy %v, want %v", i, out[0].Tokens, c.Greedy)
		}
	}
}

func maxAbsDiff(got [][]float32, want [][]float64) float64 {
	if len(got) != len(want) {
		return math.Inf(1)
	}
	worst := 0.0
	for t := range want {
		if len(got[t]) != len(want[t]) {
			return math.Inf(1)
		}
		for v := range want[t] {
			worst = math.Max(worst, math.Abs(float64(got[t][v])-want[t][v]))
		}
	}
	return worst
}
