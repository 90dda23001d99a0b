package tensor

import (
	"errors"
	"runtime"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// run is an exported-function shape: tensor work on a tape, errors caught.
func run(fail bool) (out []float32, err error) {
	defer Catch(&err)
	var tp Scope
	defer tp.Free()
	x := FromFloat32s(&tp, []float32{1, 2, 3, 4, 5, 6}, []int64{2, 3}, gotch.CPU)
	shape := []int64{3, 2}
	if fail {
		shape = []int64{4, 4} // 16 elements from 6: libtorch refuses
	}
	y := tp.T(x.View(shape, false))
	return Float32s(y), nil
}

func TestCatchAndCopies(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	got, err := run(false)
	if err != nil || len(got) != 6 || got[5] != 6 {
		t.Fatalf("run: %v, %v", got, err)
	}
	if _, err := run(true); !errors.Is(err, ErrTorch) {
		t.Fatalf("a libtorch error came back as %v, want one wrapping the caller's kind", err)
	}
	var tp Scope
	defer tp.Free()
	ids := Int64s(FromInt64s(&tp, []int64{7, -3}, []int64{2}, gotch.CPU))
	f := Float64s(FromFloat64s(&tp, []float64{0.5, 1e-300}, []int64{2}, gotch.Float, gotch.CPU))
	if ids[0] != 7 || ids[1] != -3 || f[0] != 0.5 || f[1] != 0 { // 1e-300 underflows in f32
		t.Fatalf("round trips: %v %v", ids, f)
	}
	b := Int64s(tp.T(FromBools(&tp, []bool{true, false}, gotch.CPU).Totype(gotch.Int64, false)))
	if b[0] != 1 || b[1] != 0 {
		t.Fatalf("bools: %v", b)
	}
}

func TestFreeKeepsAndDetaches(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var tp Scope
	a := tp.T(ts.Zeros([]int64{2}, gotch.Float, gotch.CPU))
	b := tp.Detach(tp.T(ts.Ones([]int64{2}, gotch.Float, gotch.CPU)))
	c := tp.T(ts.Ones([]int64{3}, gotch.Float, gotch.CPU))
	tp.Free(c)
	if a.Ctensor() != nil {
		t.Error("a recorded tensor survived Free")
	}
	if b.Ctensor() == nil || c.Ctensor() == nil {
		t.Error("a detached or kept tensor was freed")
	}
	b.MustDrop()
	c.MustDrop()
}

func TestNoGradRestores(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := ts.GradSetEnabled(true); err != nil {
		t.Fatal(err)
	}
	NoGrad(func() {
		NoGrad(func() {})
		if on, _ := ts.GradSetEnabled(false); on {
			t.Error("grad on inside a nested no-grad region")
		}
	})
	if on, _ := ts.GradSetEnabled(true); !on {
		t.Error("grad mode not restored after NoGrad")
	}
}
