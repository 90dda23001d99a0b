package model

import (
	"math"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestFusedAttentionMatchesExplicit: where libtorch has scaled_dot_product_attention (2.x), the
// fused path gives what the explicit matmul-softmax path (libtorch 1.13's) gives: log-probs,
// values, entropies and every gradient of a float64 model scoring a padded batch, and the logits
// of a padded batch decoded from a cache by an inference model (fused q/k/v).
func TestFusedAttentionMatchesExplicit(t *testing.T) {
	tensortest.LockThread(t)
	if !fusedAttention {
		t.Skipf("libtorch %s has no scaled_dot_product_attention: only the explicit path exists", ts.TorchVersion())
	}
	cfg, _ := Preset("tiny", 40) // 4 query heads over 2 kv heads: the grouped-query fold is exercised
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 32, 48, 2
	seqs := [][]int32{{1, 7, 3, 9, 2, 11, 5}, {4, 4, 8}, {6, 2}}

	var outs [2][]float64
	var grads [2]map[string][]float64
	for i, fused := range []bool{false, true} {
		m, err := Init(cfg, 11, Options{Device: gotch.CPU, DType: gotch.Double, Trainable: true})
		if err != nil {
			t.Fatal(err)
		}
		m.fused = fused
		_, s := scoreLoss(t, m, seqs, true)
		sum := ts.MustZeros([]int64{1}, gotch.Double, gotch.CPU)
		for _, x := range []*ts.Tensor{s.LogProbs, s.Values, s.Entropy} {
			outs[i] = append(outs[i], tensor.Float64s(x)...)
			part := x.MustSum(gotch.Double, false)
			sum = sum.MustAdd(part, true)
			part.MustDrop()
		}
		if err := sum.Backward(); err != nil {
			t.Fatal(err)
		}
		sum.MustDrop()
		s.Close()
		grads[i] = map[string][]float64{}
		for _, p := range m.Params() {
			g := p.Tensor.MustGrad(false)
			grads[i][p.Name] = tensor.Float64s(g)
			g.MustDrop()
		}
		m.Close()
	}
	if d := maxDiff64(outs[0], outs[1]); d > 1e-10 {
		t.Errorf("scores: fused and explicit attention differ by %g", d)
	}
	for name, g := range grads[0] {
		if d := maxDiff64(g, grads[1][name]); d > 1e-10 {
			t.Errorf("gradient of %s: fused and explicit attention differ by %g", name, d)
		}
	}

	var logits [2][][]float32
	for i, fused := range []bool{false, true} {
		m, err := Init(cfg, 11, Options{Device: gotch.CPU})
		if err != nil {
			t.Fatal(err)
		}
		m.fused = fused
		c, err := m.Prefill(seqs) // left-padded rows: the mask is not nil
		if err != nil {
			t.Fatal(err)
		}
		for _, tok := range []int32{3, 8, 1} {
			if err := m.Extend(c, [][]int32{{tok}, {tok + 1}, {tok + 2}}); err != nil {
				t.Fatal(err)
			}
			logits[i] = append(logits[i], lastLogits(t, c)...)
		}
		c.Close()
		m.Close()
	}
	for r := range logits[0] {
		if d := maxDiff32(logits[0][r], logits[1][r]); d > 1e-5 {
			t.Errorf("decoded logits, row %d: fused and explicit attention differ by %g", r, d)
		}
	}
}

func maxDiff64(a, b []float64) float64 {
	if len(a) != len(b) {
		return math.Inf(1)
	}
	worst := 0.0
	for i := range a {
		worst = math.Max(worst, math.Abs(a[i]-b[i]))
	}
	return worst
}
