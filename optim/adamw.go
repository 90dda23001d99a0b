package optim

import (
	"fmt"
	"math"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/tensor"
)

// AdamW is Adam with decoupled weight decay (arXiv 1711.05101, Algorithm 2) over a model's weights:
//
//	m ← β₁ m + (1 − β₁) g                 v ← β₂ v + (1 − β₂) g²
//	m̂ = m / (1 − β₁ᵗ)                     v̂ = v / (1 − β₂ᵗ)
//	w ← w · (1 − lr·λ) − lr · m̂ / (√v̂ + ε)
//
// where t counts the updates that weight has received: a weight whose gradient is undefined (no
// loss reached it) is skipped entirely, as PyTorch skips a None gradient.
//
// Moments are f32 (f64 for f64 weights). A bf16 or f16 weight gets an f32 master copy that the
// update is applied to and then rounded into the weight: at the source's lr of 5e-6 an update is a
// few percent of a bf16 ulp for a typical weight, so updating bf16 directly would leave it unchanged.
//
// AdamW owns its state tensors (Close frees them); the weights stay owned by the model.
type AdamW struct {
	cfg    Config
	params []tensor.Param
	slots  []slot
	steps  int64 // updates applied: the schedule's position
}

// slot is one weight's optimizer state.
type slot struct {
	m, v   *ts.Tensor // first and second moments
	master *ts.Tensor // f32 copy of a low-precision weight; nil for f32 and f64 weights
	steps  int64      // updates this weight received (its bias correction)
}

// NewAdamW makes an optimizer for params with zero moments. Pass only the weights that are trained:
// a weight no loss reaches should be left out rather than decayed for nothing.
func NewAdamW(params []tensor.Param, cfg Config) (o *AdamW, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(params) == 0 {
		return nil, fmt.Errorf("%w: no parameters", ErrConfig)
	}
	seen := map[string]bool{}
	for _, p := range params {
		if p.Tensor == nil || seen[p.Name] {
			return nil, fmt.Errorf("%w: parameter %q is nil or listed twice", ErrConfig, p.Name)
		}
		seen[p.Name] = true
	}
	o = &AdamW{cfg: cfg, params: params, slots: make([]slot, len(params))}
	defer tensor.Catch(&err)
	defer func() {
		if err != nil {
			o.Close()
		}
	}()
	tensor.NoGrad(func() {
		for i, p := range params {
			o.slots[i] = newSlot(p.Tensor)
		}
	})
	return o, nil
}

func newSlot(w *ts.Tensor) slot {
	shape, err := w.Size()
	tensor.Check(err)
	dev, err := w.Device()
	tensor.Check(err)
	dt := stateDType(w.DType())
	var s slot
	s.m = must(ts.Zeros(shape, dt, dev))
	s.v = must(ts.Zeros(shape, dt, dev))
	if dt != w.DType() {
		s.master = must(w.Totype(dt, false))
	}
	return s
}

// stateDType is the dtype moments and master weights are kept in.
func stateDType(w gotch.DType) gotch.DType {
	if w == gotch.Double {
		return gotch.Double
	}
	return gotch.Float
}

func must(x *ts.Tensor, err error) *ts.Tensor {
	tensor.Check(err)
	return x
}

// Config returns the optimizer's configuration.
func (o *AdamW) Config() Config { return o.cfg }

// Steps is the number of updates applied so far.
func (o *AdamW) Steps() int64 { return o.steps }

// LR is the learning rate the next Step will use.
func (o *AdamW) LR() float64 { return o.cfg.LRAt(o.steps) }

// Step applies one update to every weight that has a gradient, at the schedule's rate for this
// step, which it returns. Gradients are read, not cleared.
func (o *AdamW) Step() (lr float64, err error) {
	lr = o.LR()
	defer tensor.Catch(&err)
	tensor.NoGrad(func() {
		for i, p := range o.params {
			o.update(p, &o.slots[i], lr)
		}
	})
	o.steps++
	return lr, nil
}

// update applies the AdamW equations to one weight, in place, in the moments' dtype.
func (o *AdamW) update(p tensor.Param, s *slot, lr float64) {
	var tp tensor.Scope
	defer tp.Free()
	g := tp.T(p.Tensor.Grad(false))
	if !defined(g) {
		return
	}
	if g.DType() != s.m.DType() {
		g = tp.T(g.Totype(s.m.DType(), false))
	}
	s.steps++
	t := float64(s.steps)
	b1, b2 := o.cfg.Beta1, o.cfg.Beta2
	tensor.Check(s.m.Lerp_(g, tp.Scalar(1-b1)))                     // m ← β₁ m + (1 − β₁) g
	tensor.Check(s.v.Lerp_(tp.T(g.Square(false)), tp.Scalar(1-b2))) // v ← β₂ v + (1 − β₂) g²
	if lr == 0 {
		return // the moments still advance, as PyTorch's do
	}
	w := p.Tensor
	if s.master != nil {
		w = s.master
	}
	if o.cfg.WeightDecay > 0 {
		tensor.Check(w.MulScalar_(tp.Scalar(1 - lr*o.cfg.WeightDecay))) // w ← w (1 − lr·λ)
	}
	// w ← w − lr·m̂/(√v̂ + ε), as one addcdiv: w + m / (−(√v/√(1−β₂ᵗ) + ε)·(1−β₁ᵗ)/lr).
	denom := tp.T(s.v.Sqrt(false))
	tensor.Check(denom.DivScalar_(tp.Scalar(math.Sqrt(1 - math.Pow(b2, t)))))
	tensor.Check(denom.AddScalar_(tp.Scalar(o.cfg.Eps)))
	tensor.Check(denom.MulScalar_(tp.Scalar(-(1 - math.Pow(b1, t)) / lr)))
	tensor.Check(w.Addcdiv_(s.m, denom))
	if s.master != nil {
		p.Tensor.Copy_(s.master) // round the f32 master into the weight's dtype
	}
}

// defined reports whether a gradient handle holds a tensor (a weight no loss reached has none).
func defined(g *ts.Tensor) bool {
	ok, err := g.Defined()
	tensor.Check(err)
	return ok
}

// Close frees the optimizer's state.
func (o *AdamW) Close() {
	for i := range o.slots {
		s := &o.slots[i]
		for _, x := range []**ts.Tensor{&s.m, &s.v, &s.master} {
			if *x != nil {
				(*x).MustDrop()
				*x = nil
			}
		}
	}
}
