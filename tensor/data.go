package tensor

import (
	"fmt"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Copies between Go slices and tensors: one memcpy each way, no reflection.

// FromInt64s copies data into a new int64 tensor of the given shape on dev.
func FromInt64s(tp *Scope, data []int64, shape []int64, dev gotch.Device) *ts.Tensor {
	return fromSlice(tp, unsafe.Pointer(unsafe.SliceData(data)), len(data)*8, gotch.Int64, shape, dev)
}

// FromFloat32s copies data into a new float32 tensor of the given shape on dev.
func FromFloat32s(tp *Scope, data []float32, shape []int64, dev gotch.Device) *ts.Tensor {
	return fromSlice(tp, unsafe.Pointer(unsafe.SliceData(data)), len(data)*4, gotch.Float, shape, dev)
}

// FromFloat64s copies data into a new tensor of the given shape, converted to dtype, on dev.
func FromFloat64s(tp *Scope, data []float64, shape []int64, dtype gotch.DType, dev gotch.Device) *ts.Tensor {
	x := fromSlice(tp, unsafe.Pointer(unsafe.SliceData(data)), len(data)*8, gotch.Double, shape, gotch.CPU)
	if dtype != gotch.Double {
		x = tp.T(x.Totype(dtype, false))
	}
	if dev.IsCuda() {
		x = tp.T(x.To(dev, false))
	}
	return x
}

// FromBools copies a Go bool slice into a new bool tensor on dev.
func FromBools(tp *Scope, xs []bool, dev gotch.Device) *ts.Tensor {
	b := make([]int64, len(xs))
	for i, x := range xs {
		if x {
			b[i] = 1
		}
	}
	t := FromInt64s(tp, b, []int64{int64(len(b))}, dev)
	return tp.T(t.Totype(gotch.Bool, false))
}

func fromSlice(tp *Scope, src unsafe.Pointer, nbytes int, dtype gotch.DType, shape []int64, dev gotch.Device) *ts.Tensor {
	if Numel(shape)*int64(dtype.Size()) != int64(nbytes) {
		panic(fmt.Sprintf("tensor: %d bytes for shape %v of %v", nbytes, shape, dtype))
	}
	x := tp.T(ts.Empty(shape, dtype, gotch.CPU))
	if nbytes > 0 {
		dst, err := x.DataPtr()
		Check(err)
		copy(unsafe.Slice((*byte)(dst), nbytes), unsafe.Slice((*byte)(src), nbytes))
	}
	if !dev.IsCuda() {
		return x
	}
	return tp.T(x.To(dev, false))
}

// Float32s copies a tensor of any float dtype, on any device, into a Go slice.
func Float32s(x *ts.Tensor) []float32 { return hostCopy[float32](x, gotch.Float) }

// Float64s copies a tensor of any float dtype, on any device, into a Go slice of float64.
func Float64s(x *ts.Tensor) []float64 { return hostCopy[float64](x, gotch.Double) }

// Int64s copies an integer tensor into a Go slice.
func Int64s(x *ts.Tensor) []int64 { return hostCopy[int64](x, gotch.Int64) }

// hostCopy copies x, converted to dtype (whose Go type is T), into a new Go slice.
func hostCopy[T float32 | float64 | int64](x *ts.Tensor, dtype gotch.DType) []T {
	var tp Scope
	defer tp.Free()
	c := hostContiguous(&tp, x, dtype)
	out := make([]T, c.Numel())
	Check(c.CopyData(out, uint(len(out))))
	return out
}

// hostContiguous is x detached, on the CPU, contiguous, in dtype.
func hostContiguous(tp *Scope, x *ts.Tensor, dtype gotch.DType) *ts.Tensor {
	c := x
	if ok, _ := c.RequiresGrad(); ok {
		c = tp.T(c.Detach(false))
	}
	if c.DType() != dtype {
		c = tp.T(c.Totype(dtype, false))
	}
	if dev, _ := c.Device(); dev.IsCuda() {
		c = tp.T(c.To(gotch.CPU, false))
	}
	return tp.T(c.Contiguous(false))
}

// Numel is the number of elements of shape.
func Numel(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}
