package optim

import (
	"fmt"

	"github.com/sugarme/gotch/ts"
)

// The tensor-lifetime pattern of tsd (docs/gotch.md, model/tape.go): every function that runs tensor
// ops records what it makes on a tape and frees it on return; a libtorch error inside becomes a
// panic carrying torchError that the exported function turns back into an error with catch.

type torchError struct{ err error }

type tape struct {
	held    []*ts.Tensor
	scalars []*ts.Scalar
}

// t records x, or panics with err. Use as tp.t(x.Op(..., false)).
func (tp *tape) t(x *ts.Tensor, err error) *ts.Tensor {
	check(err)
	tp.held = append(tp.held, x)
	return x
}

// scalar makes a libtorch scalar freed with the tape.
func (tp *tape) scalar(v float64) *ts.Scalar {
	s := ts.FloatScalar(v)
	tp.scalars = append(tp.scalars, s)
	return s
}

func (tp *tape) free() {
	for _, x := range tp.held {
		x.MustDrop()
	}
	tp.held = tp.held[:0]
	for _, s := range tp.scalars {
		s.MustDrop()
	}
	tp.scalars = tp.scalars[:0]
}

// check panics with err if it is not nil (in-place ops return only an error).
func check(err error) {
	if err != nil {
		panic(torchError{err})
	}
}

// catch turns a torchError panic into *err; other panics pass through.
func catch(err *error) {
	if r := recover(); r != nil {
		te, ok := r.(torchError)
		if !ok {
			panic(r)
		}
		*err = fmt.Errorf("%w: %v", ErrTorch, te.err)
	}
}

// noGrad runs fn with autograd off and restores the previous mode (ts.NoGrad would turn it on).
func noGrad(fn func()) {
	prev, err := ts.GradSetEnabled(false)
	check(err)
	defer func() { _, err := ts.GradSetEnabled(prev); check(err) }()
	fn()
}
