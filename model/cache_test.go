package model

import (
	"math"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

func lastLogits(t *testing.T, c *Cache) [][]float32 {
	t.Helper()
	flat := tensor.Float32s(c.last)
	V := c.m.cfg.VocabSize
	out := make([][]float32, c.Rows())
	for r := range out {
		out[r] = flat[r*V : (r+1)*V]
	}
	return out
}

func maxDiff32(a, b []float32) float64 {
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(float64(a[i]-b[i])))
	}
	return worst
}

// TestCacheMatchesFullForward: decoding one token at a time from a cache gives the logits a full
// forward pass gives at the same position.
func TestCacheMatchesFullForward(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	seq := readGolden(t)[2].IDs // 19 tokens
	full, err := m.Logits([][]int32{seq})
	if err != nil {
		t.Fatal(err)
	}
	c, err := m.Prefill([][]int32{seq[:5]})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 5; i < len(seq); i++ {
		if d := maxDiff32(lastLogits(t, c)[0], full[0][i-1]); d > 1e-5 {
			t.Fatalf("position %d: cached decode differs from full forward by %g", i-1, d)
		}
		if err := m.Extend(c, [][]int32{{seq[i]}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestCacheForkConcatTrim: forking rows, concatenating caches of different lengths, extending rows
// by different numbers of tokens and trimming all give the logits of the plain sequence.
func TestCacheForkConcatTrim(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	g := readGolden(t)
	a, b := g[1].IDs, g[2].IDs // 7 and 19 tokens
	want, err := m.Logits([][]int32{a, b})
	if err != nil {
		t.Fatal(err)
	}
	ca, err := m.Prefill([][]int32{a[:2]})
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close()
	cb, err := m.Prefill([][]int32{b[:11]})
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close()
	both, err := Concat([]*Cache{ca, cb})
	if err != nil {
		t.Fatal(err)
	}
	defer both.Close()
	forked, err := both.Select([]int{0, 1, 1, 0})
	if err != nil {
		t.Fatal(err)
	}
	defer forked.Close()
	// Rows get 5, 8, 3 and 0 new tokens.
	if err := m.Extend(forked, [][]int32{a[2:], b[11:], b[11:14], nil}); err != nil {
		t.Fatal(err)
	}
	got := lastLogits(t, forked)
	checks := []struct {
		row  int
		want []float32
	}{{0, want[0][6]}, {1, want[1][18]}, {2, want[1][13]}, {3, want[0][1]}}
	for _, ch := range checks {
		if d := maxDiff32(got[ch.row], ch.want); d > 1e-5 {
			t.Errorf("row %d differs by %g", ch.row, d)
		}
	}
	// Trim row 1's extension off and extend again with the same tokens.
	if err := forked.Trim(forked.Len() - 8); err != nil {
		t.Fatal(err)
	}
	if forked.Tokens(1) != 11 {
		t.Fatalf("after trim row 1 holds %d tokens, want 11", forked.Tokens(1))
	}
	if err := m.Extend(forked, [][]int32{nil, b[11:], nil, nil}); err != nil {
		t.Fatal(err)
	}
	if d := maxDiff32(lastLogits(t, forked)[1], want[1][18]); d > 1e-5 {
		t.Errorf("after trim and re-extend, row 1 differs by %g", d)
	}
}

func TestCacheBadInput(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	if _, err := m.Prefill([][]int32{{1, 2}, {}}); err == nil {
		t.Error("empty sequence accepted")
	}
	if _, err := m.Prefill([][]int32{{1, 5000}}); err == nil {
		t.Error("token id past the vocabulary accepted")
	}
	c, err := m.Prefill([][]int32{{1, 2}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := m.Extend(c, [][]int32{{1}, {2}}); err == nil {
		t.Error("two rows of tokens for a one-row cache accepted")
	}
	if _, err := c.Select([]int{1}); err == nil {
		t.Error("selecting a row that does not exist accepted")
	}
	if err := c.Trim(10); err == nil {
		t.Error("trimming past the end accepted")
	}
	if _, err := m.Generate(c, SampleOptions{MaxNewTokens: 0}, nil); err == nil {
		t.Error("max new tokens 0 accepted")
	}
	if _, err := m.Generate(c, SampleOptions{MaxNewTokens: 2, Stop: []string{"x"}}, nil); err == nil {
		t.Error("stop strings without a decoder accepted")
	}
}
