package learner

import (
	"math"
	"math/rand/v2"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Hand-computed examples of every loss on pure tensors (no model), and gradient checks: each loss
// is summed (Σ_t L_t) and differentiated with respect to the log-probs, which are a leaf here, so
// ∇log π = 1 and the gradient of token t is ∂L_t/∂log π_t.

// row makes a (1, T) f64 tensor; grad turns it into a leaf requiring gradients.
func row(t testing.TB, x []float64, grad bool) *ts.Tensor {
	t.Helper()
	v := ts.MustOfSlice(x).MustView([]int64{1, int64(len(x))}, true)
	if grad {
		v = v.MustSetRequiresGrad(true, true)
	}
	t.Cleanup(v.MustDrop)
	return v
}

func logs(ps ...float64) []float64 {
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = math.Log(p)
	}
	return out
}

// lossAndGrad sums loss, backpropagates, and returns the per-token loss and ∂Σloss/∂logp.
func lossAndGrad(t testing.TB, loss, logp *ts.Tensor) (vals, grad []float64) {
	t.Helper()
	sum := loss.MustSum(gotch.Double, false)
	defer sum.MustDrop()
	if err := sum.Backward(); err != nil {
		t.Fatal(err)
	}
	g := logp.MustGrad(false)
	defer g.MustDrop()
	return tensor.Float64s(loss), tensor.Float64s(g)
}

func checkAll(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !near(got[i], want[i], 1e-12) {
			t.Fatalf("%s = %v, want %v", what, got, want)
		}
	}
}

// TestPPOClip: ε = 0.2 on four tokens with ratios 1.5, 0.5, 1.1, 0.5:
//
//	r=1.5 A=+2: min(3, 1.2·2=2.4)    = 2.4  → L = −2.4, gradient 0 (outside the region, A > 0)
//	r=0.5 A=+2: min(1, 0.8·2=1.6)    = 1    → L = −1,   gradient −r·A = −1
//	r=1.1 A=−1: min(−1.1, −1.1)      = −1.1 → L = 1.1,  gradient −r·A = 1.1
//	r=0.5 A=−1: min(−0.5, 0.8·−1)    = −0.8 → L = 0.8,  gradient 0 (outside the region, A < 0)
func TestPPOClip(t *testing.T) {
	tensortest.LockThread(t)
	var tp tensor.Scope
	defer tp.Free()
	logp := row(t, logs(0.75, 0.25, 0.55, 0.25), true)
	old := row(t, logs(0.5, 0.5, 0.5, 0.5), false)
	adv := row(t, []float64{2, 2, -1, -1}, false)
	loss, clipped := ppoClip(&tp, logp, old, adv, 0.2)
	vals, grad := lossAndGrad(t, loss, logp)
	checkAll(t, "loss", vals, []float64{-2.4, -1, 1.1, 0.8})
	checkAll(t, "gradient", grad, []float64{0, -1, 1.1, 0})
	checkAll(t, "clipped", tensor.Float64s(clipped), []float64{1, 1, 0, 1})
}

// TestPPOClipZeroGradientOutsideTrustRegion: for every ratio above 1 + ε with a positive advantage
// the token's gradient is exactly zero, and just inside it is −r·A.
func TestPPOClipZeroGradientOutsideTrustRegion(t *testing.T) {
	tensortest.LockThread(t)
	ratios := []float64{1.2001, 1.3, 2, 10, 1e3, 1.19, 1.0}
	var lp, adv []float64
	for i, r := range ratios {
		lp = append(lp, math.Log(r*0.001))
		adv = append(adv, 0.5+float64(i))
	}
	var tp tensor.Scope
	defer tp.Free()
	old := make([]float64, len(ratios))
	for i := range old {
		old[i] = math.Log(0.001)
	}
	logp := row(t, lp, true)
	loss, clipped := ppoClip(&tp, logp, row(t, old, false), row(t, adv, false), 0.2)
	_, grad := lossAndGrad(t, loss, logp)
	cl := tensor.Float64s(clipped)
	for i, r := range ratios {
		inside := r <= 1.2
		if want := -r * adv[i]; inside && !near(grad[i], want, 1e-9) {
			t.Errorf("ratio %v inside the region: gradient %v, want %v", r, grad[i], want)
		}
		if !inside && grad[i] != 0 {
			t.Errorf("ratio %v, A = %v: gradient %v, want exactly 0", r, adv[i], grad[i])
		}
		if (cl[i] == 1) == inside {
			t.Errorf("ratio %v: clipped flag %v", r, cl[i])
		}
	}
}

// TestCISPO: ε_high = 5 (weights clipped to [0, 6]) on ratios 1.5, 8, 0.5:
//
//	r=1.5 A=+2: w=1.5, L = −1.5·2·log 0.75, gradient −3
//	r=8   A=+1: w=6,   L = −6·log 0.8,      gradient −6   (clipped, yet still a gradient)
//	r=0.5 A=−1: w=0.5, L = 0.5·log 0.25,    gradient 0.5
func TestCISPO(t *testing.T) {
	tensortest.LockThread(t)
	var tp tensor.Scope
	defer tp.Free()
	logp := row(t, logs(0.75, 0.8, 0.25), true)
	old := row(t, logs(0.5, 0.1, 0.5), false)
	loss, clipped := cispo(&tp, logp, old, row(t, []float64{2, 1, -1}, false), 5)
	vals, grad := lossAndGrad(t, loss, logp)
	checkAll(t, "loss", vals, []float64{-3 * math.Log(0.75), -6 * math.Log(0.8), 0.5 * math.Log(0.25)})
	checkAll(t, "gradient", grad, []float64{-3, -6, 0.5})
	checkAll(t, "clipped", tensor.Float64s(clipped), []float64{0, 1, 0})
}

// TestCISPOGradientIsClippedWeightTimesAdvantage: for random ratios (many far outside any trust
// region) and advantages, ∂L_t/∂log π_t = −clip(r_t, 0, 1+ε_high)·A_t, never zero for A_t ≠ 0.
func TestCISPOGradientIsClippedWeightTimesAdvantage(t *testing.T) {
	tensortest.LockThread(t)
	rng := rand.New(rand.NewPCG(7, 8))
	const n, epsHigh = 500, 5.0
	lp, old, adv := make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range lp {
		lp[i] = -8 * rng.Float64()
		old[i] = -8 * rng.Float64()
		adv[i] = 4*rng.Float64() - 2
	}
	var tp tensor.Scope
	defer tp.Free()
	logp := row(t, lp, true)
	loss, _ := cispo(&tp, logp, row(t, old, false), row(t, adv, false), epsHigh)
	_, grad := lossAndGrad(t, loss, logp)
	clippedSome := false
	for i := range grad {
		r := math.Exp(lp[i] - old[i])
		w := math.Min(math.Max(r, 0), 1+epsHigh)
		clippedSome = clippedSome || r > 1+epsHigh
		if !near(grad[i], -w*adv[i], 1e-9) {
			t.Fatalf("token %d (r = %v, A = %v): gradient %v, want %v", i, r, adv[i], grad[i], -w*adv[i])
		}
		if grad[i] == 0 {
			t.Fatalf("token %d dropped (r = %v)", i, r)
		}
	}
	if !clippedSome {
		t.Fatal("no ratio exceeded 1 + ε_high; the test proves nothing")
	}
}

// TestGRPOIsPPOClipOnGroupAdvantages: the GRPO loss of a group equals PPO-clip with each sample's
// group-normalised advantage on all of its tokens.
func TestGRPOIsPPOClipOnGroupAdvantages(t *testing.T) {
	tensortest.LockThread(t)
	rewards := []float64{1, 0, -1}
	adv := groupAdvantages(rewards) // ≈ [1, 0, −1]
	var tp tensor.Scope
	defer tp.Free()
	// One token per sample: ratios 1.5, 1, 0.9.
	logp := row(t, logs(0.75, 0.5, 0.45), true)
	loss, _ := grpo(&tp, logp, row(t, logs(0.5, 0.5, 0.5), false), row(t, adv, false), 0.2)
	vals, _ := lossAndGrad(t, loss, logp)
	want := []float64{-1.2 * adv[0], 0, -0.9 * adv[2]} // r=1.5 clipped to 1.2 (A>0); r=0.9 inside
	checkAll(t, "loss", vals, want)
}

// TestValueLoss: (V − G)² per token, gradient 2(V − G).
func TestValueLoss(t *testing.T) {
	tensortest.LockThread(t)
	var tp tensor.Scope
	defer tp.Free()
	v := row(t, []float64{0.5, -0.2, 1}, true)
	loss := valueLoss(&tp, v, row(t, []float64{1, 1, 1}, false))
	vals, grad := lossAndGrad(t, loss, v)
	checkAll(t, "loss", vals, []float64{0.25, 1.44, 0})
	checkAll(t, "gradient", grad, []float64{-1, -2.4, 0})
}

// TestKLK3: hand values, ≥ 0 everywhere, 0 (with zero gradient) where the policies agree.
//
//	π = 0.5, π_ref = 0.25: ρ = 0.5, k3 = −0.5 − log 0.5 ≈ 0.1931, ∂k3/∂log π = 1 − ρ = 0.5
//	π = 0.2, π_ref = 0.6:  ρ = 3,   k3 = 2 − log 3 ≈ 0.9014,   ∂k3/∂log π = 1 − ρ = −2
func TestKLK3(t *testing.T) {
	tensortest.LockThread(t)
	var tp tensor.Scope
	defer tp.Free()
	logp := row(t, logs(0.5, 0.2, 0.3), true)
	kl := klK3(&tp, logp, row(t, logs(0.25, 0.6, 0.3), false))
	vals, grad := lossAndGrad(t, kl, logp)
	checkAll(t, "k3", vals, []float64{-0.5 - math.Log(0.5), 2 - math.Log(3), 0})
	checkAll(t, "gradient", grad, []float64{0.5, -2, 0})

	rng := rand.New(rand.NewPCG(9, 10))
	n := 1000
	a, b := make([]float64, n), make([]float64, n)
	for i := range a {
		a[i], b[i] = -30*rng.Float64(), -30*rng.Float64()
	}
	for i, x := range tensor.Float64s(klK3(&tp, row(t, a, false), row(t, b, false))) {
		if !(x >= 0) || math.IsInf(x, 0) {
			t.Fatalf("k3(log π = %v, log π_ref = %v) = %v", a[i], b[i], x)
		}
	}
	for i, x := range tensor.Float64s(klK3(&tp, row(t, a, false), row(t, a, false))) {
		if x != 0 {
			t.Fatalf("k3 of equal log-probs %v = %v, want 0", a[i], x)
		}
	}
}

// TestRatiosStayFinite: a token the current policy finds nearly impossible under a confident
// behaviour policy (and the reverse) gives finite losses and gradients, not inf or NaN.
func TestRatiosStayFinite(t *testing.T) {
	tensortest.LockThread(t)
	for _, f := range []struct {
		name string
		loss func(tp *tensor.Scope, logp, old, adv *ts.Tensor) *ts.Tensor
	}{
		{"ppo", func(tp *tensor.Scope, logp, old, adv *ts.Tensor) *ts.Tensor {
			l, _ := ppoClip(tp, logp, old, adv, 0.2)
			return l
		}},
		{"cispo", func(tp *tensor.Scope, logp, old, adv *ts.Tensor) *ts.Tensor {
			l, _ := cispo(tp, logp, old, adv, 5)
			return l
		}},
		{"k3", func(tp *tensor.Scope, logp, old, _ *ts.Tensor) *ts.Tensor { return klK3(tp, logp, old) }},
	} {
		t.Run(f.name, func(t *testing.T) {
			tensortest.LockThread(t)
			var tp tensor.Scope
			defer tp.Free()
			logp := row(t, []float64{-200, -0.01, -1}, true)
			vals, grad := lossAndGrad(t, f.loss(&tp, logp, row(t, []float64{-0.01, -200, -1}, false), row(t, []float64{1, -1, 1}, false)), logp)
			for i := range vals {
				if math.IsNaN(vals[i]) || math.IsInf(vals[i], 0) || math.IsNaN(grad[i]) || math.IsInf(grad[i], 0) {
					t.Fatalf("loss %v, gradient %v", vals, grad)
				}
			}
		})
	}
}
