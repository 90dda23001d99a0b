package optim

import (
	"testing"
	"tsd/tensor"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// leaf makes a trainable weight holding values.
func leaf(t testing.TB, name string, dt gotch.DType, values []float64) tensor.Param {
	t.Helper()
	x := ts.MustOfSlice(values)
	y := x.MustTotype(dt, true)
	w := y.MustSetRequiresGrad(true, true)
	t.Cleanup(w.MustDrop)
	return tensor.Param{Name: name, Tensor: w}
}

// addGrad accumulates g into p's gradient (backward of Σ w·g).
func addGrad(t testing.TB, p tensor.Param, g []float64) {
	t.Helper()
	// A gotch build without tsd's compat fixes restores grad mode wrongly after a no-grad region.
	if _, err := ts.GradSetEnabled(true); err != nil {
		t.Fatal(err)
	}
	c := ts.MustOfSlice(g).MustTotype(p.Tensor.DType(), true)
	defer c.MustDrop()
	prod := p.Tensor.MustMul(c, false)
	loss := prod.MustSum(p.Tensor.DType(), true)
	defer loss.MustDrop()
	if err := loss.Backward(); err != nil {
		t.Fatal(err)
	}
}

func values(t testing.TB, x *ts.Tensor) []float64 {
	t.Helper()
	c := x.MustTotype(gotch.Double, false)
	defer c.MustDrop()
	out := make([]float64, c.Numel())
	c.MustCopyData(out, uint(len(out)))
	return out
}

func gradValues(t testing.TB, p tensor.Param) []float64 {
	t.Helper()
	g := p.Tensor.MustGrad(false)
	defer g.MustDrop()
	if !g.MustDefined() {
		return nil
	}
	return values(t, g)
}

// rawBytes is a tensor's memory, for bit-for-bit comparisons.
func rawBytes(x *ts.Tensor) []byte {
	c := x.MustContiguous(false)
	defer c.MustDrop()
	n := int(c.Numel()) * int(c.DType().Size())
	return append([]byte(nil), unsafe.Slice((*byte)(c.MustDataPtr()), n)...)
}

// gradValuesTensor is p's gradient as a new tensor the test owns.
func gradValuesTensor(t testing.TB, p tensor.Param) *ts.Tensor {
	t.Helper()
	g := p.Tensor.MustGrad(false)
	t.Cleanup(g.MustDrop)
	return g
}
