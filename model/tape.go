package model

import (
	"errors"
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// The lifetime pattern of this package (docs/gotch.md explains why it is needed):
//
//   - Every exported function that runs tensor ops opens a tape, records each tensor it makes on it,
//     and frees the tape's tensors on return, except the ones it hands to the caller.
//   - Tensors handed out are owned by the caller, who drops them (or a type with a Close method that
//     does); long-lived tensors (weights, caches) belong to a type with Close.
//   - libtorch errors inside a tape become a panic carrying torchError, which the exported function
//     turns back into an error with `defer catch(&err)`. Shapes are checked where data enters, so such
//     an error means something outside our control (out of memory, a stubbed op), not bad input.
//
// Freeing a tensor's handle does not free what autograd still needs: the graph holds its own
// references, so a tape can be closed between forward and backward.

// torchError carries a libtorch error through a tape's panic.
type torchError struct{ err error }

// tape records the tensors one call makes, so they are freed together.
type tape struct {
	held    []*ts.Tensor
	scalars []*ts.Scalar
}

// t records x, or panics with err. Use as tp.t(x.Op(..., false)).
func (tp *tape) t(x *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		panic(torchError{err})
	}
	tp.held = append(tp.held, x)
	return x
}

// t2 records both results of a two-output op.
func (tp *tape) t2(a, b *ts.Tensor, err error) (*ts.Tensor, *ts.Tensor) {
	if err != nil {
		panic(torchError{err})
	}
	tp.held = append(tp.held, a, b)
	return a, b
}

// check panics with err if it is not nil (for in-place ops, which return only an error).
func check(err error) {
	if err != nil {
		panic(torchError{err})
	}
}

// free drops every recorded tensor except those in keep.
func (tp *tape) free(keep ...*ts.Tensor) {
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

// detach stops recording x, so free will not drop it.
func (tp *tape) detach(x *ts.Tensor) *ts.Tensor {
	for i, h := range tp.held {
		if h == x {
			tp.held = append(tp.held[:i], tp.held[i+1:]...)
			break
		}
	}
	return x
}

func contains(xs []*ts.Tensor, x *ts.Tensor) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
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

// fromInt64 copies a Go slice into a new int64 tensor of the given shape on device.
func fromInt64(tp *tape, data []int64, shape []int64, dev gotch.Device) *ts.Tensor {
	return fromSlice(tp, unsafe.Pointer(unsafe.SliceData(data)), len(data)*8, gotch.Int64, shape, dev)
}

// fromFloat32 copies a Go slice into a new float32 tensor of the given shape on device.
func fromFloat32(tp *tape, data []float32, shape []int64, dev gotch.Device) *ts.Tensor {
	return fromSlice(tp, unsafe.Pointer(unsafe.SliceData(data)), len(data)*4, gotch.Float, shape, dev)
}

func fromSlice(tp *tape, src unsafe.Pointer, nbytes int, dtype gotch.DType, shape []int64, dev gotch.Device) *ts.Tensor {
	if numel(shape)*int64(dtype.Size()) != int64(nbytes) {
		panic(fmt.Sprintf("model: %d bytes for shape %v of %v", nbytes, shape, dtype))
	}
	x := tp.t(ts.Empty(shape, dtype, gotch.CPU))
	if nbytes > 0 {
		dst, err := x.DataPtr()
		if err != nil {
			panic(torchError{err})
		}
		copy(unsafe.Slice((*byte)(dst), nbytes), unsafe.Slice((*byte)(src), nbytes))
	}
	if dev == gotch.CPU {
		return x
	}
	return tp.t(x.To(dev, false))
}

// float32s copies a tensor of any float dtype, on any device, into a Go slice.
func float32s(x *ts.Tensor) []float32 {
	var tp tape
	defer tp.free()
	c := x
	if x.DType() != gotch.Float {
		c = tp.t(x.Totype(gotch.Float, false))
	}
	if dev, _ := c.Device(); dev.IsCuda() {
		c = tp.t(c.To(gotch.CPU, false))
	}
	c = tp.t(c.Contiguous(false))
	out := make([]float32, c.Numel())
	check(c.CopyData(out, uint(len(out))))
	return out
}

// int64s copies an int64 tensor into a Go slice.
func int64s(x *ts.Tensor) []int64 {
	var tp tape
	defer tp.free()
	c := x
	if dev, _ := c.Device(); dev.IsCuda() {
		c = tp.t(c.To(gotch.CPU, false))
	}
	c = tp.t(c.Contiguous(false))
	out := make([]int64, c.Numel())
	check(c.CopyData(out, uint(len(out))))
	return out
}

func numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

// Errors of this package. Callers test them with errors.Is.
var (
	// ErrTorch wraps an error libtorch raised (out of memory, an op missing from this libtorch).
	ErrTorch = errors.New("libtorch")
	// ErrConfig is a config.json this package cannot run.
	ErrConfig = errors.New("model config")
	// ErrCheckpoint is a weights file that is missing, truncated, or disagrees with the config.
	ErrCheckpoint = errors.New("checkpoint")
	// ErrInput is a request with bad ids, shapes or options.
	ErrInput = errors.New("model input")
)
