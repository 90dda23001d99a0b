package learner

import (
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The tensor-lifetime pattern of tsd (docs/gotch.md, model/tape.go): a function that runs tensor ops
// records each tensor it makes on a tape and frees the tape on return, keeping only what it hands
// out. A libtorch error inside becomes a panic carrying torchError, turned back into an error by
// catch in the exported function. Freeing a handle does not free what autograd still needs, so a
// tape may be freed between forward and backward.

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

// fromFloat64s copies data into a new tensor of shape, dtype and device.
func fromFloat64s(tp *tape, data []float64, shape []int64, dtype gotch.DType, dev gotch.Device) *ts.Tensor {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	if n != int64(len(data)) {
		panic(fmt.Sprintf("learner: %d values for shape %v", len(data), shape))
	}
	x := tp.t(ts.Empty(shape, gotch.Double, gotch.CPU))
	if n > 0 {
		ptr, err := x.DataPtr()
		check(err)
		copy(unsafe.Slice((*float64)(ptr), n), data)
	}
	if dtype != gotch.Double {
		x = tp.t(x.Totype(dtype, false))
	}
	if dev != gotch.CPU {
		x = tp.t(x.To(dev, false))
	}
	return x
}

// float64s copies a tensor of any float dtype, on any device, into a Go slice.
func float64s(x *ts.Tensor) []float64 {
	var tp tape
	defer tp.free()
	c := tp.t(x.Detach(false))
	if dev, err := c.Device(); err == nil && dev.IsCuda() {
		c = tp.t(c.To(gotch.CPU, false))
	}
	c = tp.t(tp.t(c.Totype(gotch.Double, false)).Contiguous(false))
	out := make([]float64, c.Numel())
	check(c.CopyData(out, uint(len(out))))
	return out
}
