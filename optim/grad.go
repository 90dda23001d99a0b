package optim

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/tensor"
)

// ZeroGrad sets every defined gradient of params to zero, so the next backward passes accumulate
// into clean buffers. Weights without a gradient (no loss reached them yet) are left as they are.
func ZeroGrad(params []tensor.Param) (err error) {
	defer tensor.Catch(&err)
	tensor.NoGrad(func() {
		for _, p := range params {
			forGrad(p, func(g *ts.Tensor) { tensor.Check(g.Zero_()) })
		}
	})
	return nil
}

// ClipGradNorm scales the gradients of params so their global L2 norm is at most maxNorm (0: leave
// them) and returns the norm before clipping:
//
//	‖g‖ = √(Σ_p ‖g_p‖²);   g_p ← g_p · maxNorm / (‖g‖ + 1e-6)   when ‖g‖ > maxNorm
//
// A NaN or infinite norm returns ErrNonFinite with the gradients untouched: the caller skips the
// update. Per-weight norms are taken on the device and combined in f64, with one host sync.
func ClipGradNorm(params []tensor.Param, maxNorm float64) (norm float64, err error) {
	if !finite(maxNorm) || maxNorm < 0 {
		return 0, fmt.Errorf("%w: max grad norm %v", ErrConfig, maxNorm)
	}
	defer tensor.Catch(&err)
	tensor.NoGrad(func() { norm = globalNorm(params) })
	if !finite(norm) {
		return norm, fmt.Errorf("%w: global gradient norm is %v", ErrNonFinite, norm)
	}
	if maxNorm == 0 || norm <= maxNorm {
		return norm, nil
	}
	coef := maxNorm / (norm + 1e-6)
	tensor.NoGrad(func() {
		var tp tensor.Scope
		defer tp.Free()
		s := tp.Scalar(coef)
		for _, p := range params {
			forGrad(p, func(g *ts.Tensor) { tensor.Check(g.MulScalar_(s)) })
		}
	})
	return norm, nil
}

// globalNorm is √(Σ_p ‖g_p‖²) over the defined gradients, 0 when there are none.
func globalNorm(params []tensor.Param) float64 {
	var tp tensor.Scope
	defer tp.Free()
	var norms []*ts.Tensor
	two := tp.Scalar(2)
	for _, p := range params {
		forGrad(p, func(g *ts.Tensor) {
			n := tp.T(g.NormScalaroptDtype(two, stateDType(g.DType()), false)) // ‖g_p‖, f32 or f64
			norms = append(norms, tp.T(n.Totype(gotch.Double, false)))
		})
	}
	if len(norms) == 0 {
		return 0
	}
	all := tp.T(ts.Stack(norms, 0))
	total := tp.T(all.NormScalaroptDtype(two, gotch.Double, false))
	if dev, _ := total.Device(); dev.IsCuda() {
		total = tp.T(total.To(gotch.CPU, false))
	}
	out := make([]float64, 1)
	tensor.Check(total.CopyData(out, 1))
	return out[0]
}

// forGrad calls fn with p's gradient when it is defined.
func forGrad(p tensor.Param, fn func(g *ts.Tensor)) {
	g, err := p.Tensor.Grad(false)
	tensor.Check(err)
	defer g.MustDrop()
	if defined(g) {
		fn(g)
	}
}
