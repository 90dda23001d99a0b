// Package tape is tsd's tensor-lifetime pattern. gotch tensors hold C memory the Go GC cannot see
// (docs/gotch.md), so:
//
//   - Every function that runs tensor ops records each tensor it makes on a Tape and frees the tape
//     on return, except what it hands to its caller (Detach, or Free's keep list).
//   - Tensors handed out are owned by the caller, who drops them, or by a type with Close.
//   - A libtorch error inside a tape becomes a panic carrying Error; the exported function turns it
//     back into an error with `defer tape.Catch(&err, ErrX)`. Shapes are checked where data
//     enters, so such an error means something outside the caller's control (out of memory, an
//     op missing from this libtorch), not bad input.
//
// Freeing a handle does not free what autograd still needs: the graph keeps its own references,
// so a tape can be freed between forward and backward.
package tape

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// Error carries a libtorch error through a tape's panic.
type Error struct{ Err error }

// Tape records the tensors (and scalars) one call makes, so they are freed together.
type Tape struct {
	held    []*ts.Tensor
	scalars []*ts.Scalar
}

// T records x, or panics with err. Use as tp.T(x.Op(..., false)).
func (tp *Tape) T(x *ts.Tensor, err error) *ts.Tensor {
	Check(err)
	tp.held = append(tp.held, x)
	return x
}

// T2 records both results of a two-output op.
func (tp *Tape) T2(a, b *ts.Tensor, err error) (*ts.Tensor, *ts.Tensor) {
	Check(err)
	tp.held = append(tp.held, a, b)
	return a, b
}

// Scalar makes a libtorch scalar freed with the tape.
func (tp *Tape) Scalar(v float64) *ts.Scalar {
	s := ts.FloatScalar(v)
	tp.scalars = append(tp.scalars, s)
	return s
}

// Detach stops recording x, so Free will not drop it.
func (tp *Tape) Detach(x *ts.Tensor) *ts.Tensor {
	for i, h := range tp.held {
		if h == x {
			tp.held = append(tp.held[:i], tp.held[i+1:]...)
			break
		}
	}
	return x
}

// Free drops every recorded tensor except those in keep, and every scalar.
func (tp *Tape) Free(keep ...*ts.Tensor) {
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

// Catch turns an Error panic into *err, wrapped in kind (the caller's sentinel); other panics
// pass through. Use as `defer tape.Catch(&err, ErrTorch)`.
func Catch(err *error, kind error) {
	if r := recover(); r != nil {
		te, ok := r.(Error)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w: %v", kind, te.Err)
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
