package model

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func scoreLoss(t *testing.T, m *Qwen2, seqs [][]int32, grad bool) (float64, *Scores) {
	t.Helper()
	s, err := m.Score(seqs, ScoreOptions{NoGrad: !grad, Entropy: true})
	if err != nil {
		t.Fatal(err)
	}
	loss := 0.0
	for _, x := range []*ts.Tensor{s.LogProbs, s.Values, s.Entropy} {
		for _, v := range tensor.Float64s(x) {
			loss += v
		}
	}
	return loss, s
}

// TestGradientFiniteDifference: d(Σ log-probs + Σ values + Σ entropies)/dw from autograd matches a
// central difference, in float64, for weights in every kind of layer.
func TestGradientFiniteDifference(t *testing.T) {
	tensortest.LockThread(t)
	cfg, _ := Preset("tiny", 40)
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 16, 24, 2
	m, err := Init(cfg, 5, Options{Device: gotch.CPU, DType: gotch.Double, Trainable: true})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	seqs := [][]int32{{1, 7, 3, 9, 2, 11}, {4, 4, 8}}
	_, s := scoreLoss(t, m, seqs, true)
	sum := ts.MustZeros([]int64{1}, gotch.Double, gotch.CPU)
	for _, x := range []*ts.Tensor{s.LogProbs, s.Values, s.Entropy} {
		part := x.MustSum(gotch.Double, false)
		sum2 := sum.MustAdd(part, true)
		part.MustDrop()
		sum = sum2
	}
	if err := sum.Backward(); err != nil {
		t.Fatal(err)
	}
	sum.MustDrop()
	s.Close()
	params := map[string]*ts.Tensor{}
	for _, p := range m.Params() {
		params[p.Name] = p.Tensor
	}
	probes := []struct {
		name string
		idx  int
	}{
		{"model.embed_tokens.weight", 7*16 + 3},
		{"model.layers.0.self_attn.q_proj.weight", 37},
		{"model.layers.0.self_attn.k_proj.bias", 2},
		{"model.layers.1.self_attn.v_proj.weight", 11},
		{"model.layers.1.self_attn.o_proj.weight", 100},
		{"model.layers.0.mlp.gate_proj.weight", 5},
		{"model.layers.1.mlp.down_proj.weight", 60},
		{"model.layers.1.input_layernorm.weight", 4},
		{"model.norm.weight", 9},
		{"value_head.fc1.weight", 21},
		{"value_head.out.bias", 0},
	}
	const eps = 1e-6
	for _, pr := range probes {
		w := params[pr.name]
		g := w.MustGrad(false)
		analytic := tensor.Float64s(g)[pr.idx]
		g.MustDrop()
		data := unsafe.Slice((*float64)(w.MustDataPtr()), w.Numel())
		orig := data[pr.idx]
		data[pr.idx] = orig + eps
		up, s1 := scoreLoss(t, m, seqs, false)
		data[pr.idx] = orig - eps
		down, s2 := scoreLoss(t, m, seqs, false)
		data[pr.idx] = orig
		s1.Close()
		s2.Close()
		numeric := (up - down) / (2 * eps)
		if math.Abs(analytic-numeric) > 1e-6+1e-4*math.Abs(numeric) {
			t.Errorf("%s[%d]: autograd %.9g, finite difference %.9g", pr.name, pr.idx, analytic, numeric)
		}
	}
}

// TestTensorLifetimes: resident memory stays flat (±10%) over 1,000 decode steps and 200 training
// steps once warm, so every per-step tensor is freed.
func TestTensorLifetimes(t *testing.T) {
	if testing.Short() {
		t.Skip("memory test in -short mode")
	}
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	prompts := [][]int32{readGolden(t)[2].IDs, readGolden(t)[1].IDs}
	decode := func() {
		c, err := m.Prefill(prompts)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := m.Generate(c, SampleOptions{Temperature: 1, MaxNewTokens: 100, Values: true}, nil); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	checkFlat(t, "decode (100 steps per round)", 10, decode)
	if err := m.SetTrainable(true); err != nil {
		t.Fatal(err)
	}
	seqs := [][]int32{append(append([]int32{}, prompts[0]...), prompts[1]...), prompts[1]}
	train := func() {
		for i := 0; i < 20; i++ {
			s, err := m.Score(seqs, ScoreOptions{Entropy: true})
			if err != nil {
				t.Fatal(err)
			}
			loss := s.LogProbs.MustMean(gotch.Float, false)
			if err := loss.Backward(); err != nil {
				t.Fatal(err)
			}
			loss.MustDrop()
			s.Close()
			for _, p := range m.Params() {
				g := p.Tensor.MustGrad(false)
				if g.MustDefined() { // the value head gets no gradient from this loss
					g.MustZero_()
				}
				g.MustDrop()
			}
		}
	}
	checkFlat(t, "training (20 steps per round)", 10, train)
}

// checkFlat runs round n times and fails if RSS after the last round exceeds RSS after the second
// by more than 10%.
func checkFlat(t *testing.T, what string, n int, round func()) {
	t.Helper()
	var warm int64
	for i := 0; i < n; i++ {
		round()
		if i == 1 {
			warm = rss(t)
		}
	}
	end := rss(t)
	t.Logf("%s: RSS %d MB warm, %d MB after %d rounds", what, warm>>20, end>>20, n)
	if float64(end) > 1.1*float64(warm) {
		t.Errorf("%s: RSS grew from %d MB to %d MB", what, warm>>20, end>>20)
	}
}

func rss(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	pages, _ := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
