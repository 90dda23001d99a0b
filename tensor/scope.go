package tensor

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Error carries a libtorch error through a scope's panic.
type Error struct{ Err error }

// Scope records the tensors (and scalars) one call makes, so they are freed together. It is an
// arena, not an autograd tape: autograd keeps its own graph whatever a Scope frees.
type Scope struct {
	held    []*ts.Tensor
	scalars []*ts.Scalar
}

// T records x, or panics with err. Use as tp.T(x.Op(..., false)).
func (tp *Scope) T(x *ts.Tensor, err error) *ts.Tensor {
	Check(err)
	tp.held = append(tp.held, x)
	return x
}

// T2 records both results of a two-output op.
func (tp *Scope) T2(a, b *ts.Tensor, err error) (*ts.Tensor, *ts.Tensor) {
	Check(err)
	tp.held = append(tp.held, a, b)
	return a, b
}

// Scalar makes a libtorch scalar freed with the scope.
func (tp *Scope) Scalar(v float64) *ts.Scalar {
	s := ts.FloatScalar(v)
	tp.scalars = append(tp.scalars, s)
	return s
}

// Detach stops recording x, so Free will not drop it.
func (tp *Scope) Detach(x *ts.Tensor) *ts.Tensor {
	for i, h := range tp.held {
		if h == x {
			tp.held = append(tp.held[:i], tp.held[i+1:]...)
			break
		}
	}
	return x
}

// Free drops every recorded tensor except those in keep, and every scalar.
func (tp *Scope) Free(keep ...*ts.Tensor) {
	for _, x := range tp.held {
		if !contains(keep, x) {
			x.MustDrop()
		}
	}
	tp.held = tp.held[:0]
	for _, s := range tp.scalars {
		s.MustDrop()
	}
	tp.scalars = tp.scalars[:0]
}

func contains(xs []*ts.Tensor, x *ts.Tensor) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Check panics with Error if err is not nil (in-place ops return only an error).
func Check(err error) {
	if err != nil {
		panic(Error{err})
	}
}

// Catch turns an Error panic into *err, wrapped in ErrTorch; other panics pass through. Use as
// `defer tensor.Catch(&err)`.
func Catch(err *error) {
	if r := recover(); r != nil {
		te, ok := r.(Error)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w: %v", ErrTorch, te.Err)
	}
}

// NoGrad runs fn with autograd off and restores the previous mode (ts.NoGrad would turn it on
// instead).
func NoGrad(fn func()) {
	prev, err := ts.GradSetEnabled(false)
	Check(err)
	defer func() {
		_, err := ts.GradSetEnabled(prev)
		Check(err)
	}()
	fn()
}
