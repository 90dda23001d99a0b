package tensor

import (
	"runtime"
	"testing"
	"unsafe"

	"github.com/sugarme/gotch"
	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// The fixed cost of one small op: through gotch's Go wrapper (error check, tensor handle,
// finalizer, free) and as the bare libtorch call. docs/model.md quotes both.
//
//	go test ./torch -run XXX -bench Op -benchtime 200000x

func BenchmarkOpWrapped(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOnes([]int64{4, 8}, gotch.Float, gotch.CPU)
	y := ts.MustOnes([]int64{4, 8}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	defer y.MustDrop()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		z, err := x.Add(y, false)
		if err != nil {
			b.Fatal(err)
		}
		z.MustDrop()
	}
}

func BenchmarkOpBare(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustOnes([]int64{4, 8}, gotch.Float, gotch.CPU)
	y := ts.MustOnes([]int64{4, 8}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	defer y.MustDrop()
	var out [8]lib.Ctensor
	xc, yc := lib.Ctensor(x.Ctensor()), lib.Ctensor(y.Ctensor())
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		lib.AtgAdd((*lib.Ctensor)(unsafe.Pointer(&out[0])), xc, yc)
		lib.AtFree(out[0])
	}
}
