package optim

import (
	"math"
	"math/rand/v2"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

// refAdamW is AdamW written out per element in float64, straight from arXiv 1711.05101 Algorithm 2
// (with PyTorch's placement of ε outside the bias-corrected root).
type refAdamW struct {
	m, v []float64
	t    int
}

func (r *refAdamW) step(w, g []float64, lr float64, c Config) {
	if r.m == nil {
		r.m, r.v = make([]float64, len(w)), make([]float64, len(w))
	}
	r.t++
	for i := range w {
		r.m[i] = c.Beta1*r.m[i] + (1-c.Beta1)*g[i]
		r.v[i] = c.Beta2*r.v[i] + (1-c.Beta2)*g[i]*g[i]
		mHat := r.m[i] / (1 - math.Pow(c.Beta1, float64(r.t)))
		vHat := r.v[i] / (1 - math.Pow(c.Beta2, float64(r.t)))
		w[i] = w[i]*(1-lr*c.WeightDecay) - lr*mHat/(math.Sqrt(vHat)+c.Eps)
	}
}

// TestAdamWMatchesReference: 20 steps on random gradients over a warmup + decay schedule agree with
// the per-element reference, to rounding (f64 weights) or to f32 precision (f32 weights).
func TestAdamWMatchesReference(t *testing.T) {
	tensortest.LockThread(t)
	for _, tc := range []struct {
		dt  gotch.DType
		tol float64
	}{{gotch.Double, 1e-12}, {gotch.Float, 2e-6}} {
		t.Run(tc.dt.String(), func(t *testing.T) {
			tensortest.LockThread(t)
			rng := rand.New(rand.NewPCG(1, 2))
			cfg := Config{LR: 1e-2, Beta1: 0.9, Beta2: 0.99, Eps: 1e-8, WeightDecay: 0.1, WarmupSteps: 3, DecaySteps: 15, FinalLR: 1e-3}
			init := make([]float64, 7)
			for i := range init {
				init[i] = rng.NormFloat64()
			}
			p := leaf(t, "w", tc.dt, init)
			o, err := NewAdamW([]tensor.Param{p}, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer o.Close()
			want := append([]float64(nil), values(t, p.Tensor)...)
			var ref refAdamW
			for s := 0; s < 20; s++ {
				g := make([]float64, len(init))
				for i := range g {
					g[i] = rng.NormFloat64() * math.Pow(10, float64(i%3-1))
				}
				if err := ZeroGrad(o.params); err != nil {
					t.Fatal(err)
				}
				addGrad(t, p, g)
				lr, err := o.Step()
				if err != nil {
					t.Fatal(err)
				}
				if lr != cfg.LRAt(int64(s)) {
					t.Fatalf("step %d used lr %v, schedule says %v", s, lr, cfg.LRAt(int64(s)))
				}
				ref.step(want, values(t, gradValuesTensor(t, p)), lr, cfg)
			}
			for i, got := range values(t, p.Tensor) {
				if math.Abs(got-want[i]) > tc.tol*math.Max(1, math.Abs(want[i])) {
					t.Errorf("w[%d] = %.10g, reference %.10g", i, got, want[i])
				}
			}
			if o.Steps() != 20 {
				t.Errorf("Steps() = %d, want 20", o.Steps())
			}
		})
	}
}

// TestAdamWSkipsWeightsWithoutGradient: a weight no loss reached is neither updated nor decayed, and
// its bias correction starts when it first gets a gradient.
func TestAdamWSkipsWeightsWithoutGradient(t *testing.T) {
	tensortest.LockThread(t)
	a := leaf(t, "a", gotch.Double, []float64{1, 2})
	b := leaf(t, "b", gotch.Double, []float64{3, 4})
	cfg := DefaultConfig()
	cfg.LR, cfg.WeightDecay = 0.1, 0.5
	o, err := NewAdamW([]tensor.Param{a, b}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	addGrad(t, a, []float64{1, -1})
	for i := 0; i < 3; i++ {
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
	}
	if got := values(t, b.Tensor); got[0] != 3 || got[1] != 4 {
		t.Fatalf("weight without gradient changed to %v", got)
	}
	if o.slots[0].steps != 3 || o.slots[1].steps != 0 {
		t.Fatalf("per-weight steps %d, %d; want 3, 0", o.slots[0].steps, o.slots[1].steps)
	}
	// b's first update is a bias-corrected Adam step: w·(1 − lr·λ) − lr·sign(g).
	addGrad(t, b, []float64{2, -2})
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
	lr := cfg.LRAt(3)
	got := values(t, b.Tensor)
	want := []float64{3*(1-lr*cfg.WeightDecay) - lr, 4*(1-lr*cfg.WeightDecay) + lr}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Fatalf("b after its first update = %v, want %v", got, want)
		}
	}
}

// TestAdamWMasterWeights: a bf16 weight is updated through an f32 master copy, so updates far below
// a bf16 ulp accumulate instead of vanishing, and the weight is always the master rounded to bf16.
func TestAdamWMasterWeights(t *testing.T) {
	tensortest.LockThread(t)
	p := leaf(t, "w", gotch.BFloat16, []float64{0.02, -0.03})
	cfg := DefaultConfig()
	cfg.DecaySteps, cfg.WeightDecay = 0, 0
	o, err := NewAdamW([]tensor.Param{p}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	start := values(t, p.Tensor)
	addGrad(t, p, []float64{1, -1})
	const steps = 200
	for i := 0; i < steps; i++ {
		if _, err := o.Step(); err != nil {
			t.Fatal(err)
		}
	}
	master := values(t, o.slots[0].master)
	// Constant gradients: every step moves by lr (m̂/√v̂ = ±1).
	wantMaster := []float64{start[0] - steps*cfg.LR, start[1] + steps*cfg.LR}
	for i := range master {
		if math.Abs(master[i]-wantMaster[i]) > 5e-7 { // 200 f32 roundings of ~2e-9
			t.Fatalf("master = %v, want %v", master, wantMaster)
		}
	}
	rounded := o.slots[0].master.MustTotype(gotch.BFloat16, false)
	defer rounded.MustDrop()
	if got, want := values(t, p.Tensor), values(t, rounded); got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("weight %v is not the master rounded to bf16 %v", got, want)
	}
	if got := values(t, p.Tensor); got[0] == start[0] || got[1] == start[1] {
		t.Fatalf("bf16 weight never moved: %v (start %v)", got, start)
	}
}

func TestNewAdamWErrors(t *testing.T) {
	tensortest.LockThread(t)
	p := leaf(t, "w", gotch.Float, []float64{1})
	bad := DefaultConfig()
	bad.LR = -1
	cases := map[string]struct {
		params []tensor.Param
		cfg    Config
	}{
		"no params":  {nil, DefaultConfig()},
		"duplicate":  {[]tensor.Param{p, p}, DefaultConfig()},
		"nil tensor": {[]tensor.Param{{Name: "x"}}, DefaultConfig()},
		"bad config": {[]tensor.Param{p}, bad},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tensortest.LockThread(t)
			if _, err := NewAdamW(c.params, c.cfg); err == nil {
				t.Fatal("no error")
			}
		})
	}
}
