package tensor

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// These tests pin the fixes deploy/gotch applies to gotch v0.9.1; each fails on the unpatched copy.

// TestInPlaceOpsDoNotLeak: unpatched, every in-place op leaked the tensor's previous handle and with it
// a reference to the storage (+400 MB per 100 adds on a 4 MB tensor).
func TestInPlaceOpsDoNotLeak(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := ts.MustZeros([]int64{1 << 20}, gotch.Float, gotch.CPU) // 4 MB
	defer x.MustDrop()
	one := ts.FloatScalar(1)
	defer one.MustDrop()
	before := rssBytes(t)
	for i := 0; i < 200; i++ {
		if err := x.AddScalar_(one); err != nil {
			t.Fatal(err)
		}
	}
	grown := rssBytes(t) - before
	if grown > 64<<20 {
		t.Fatalf("RSS grew %d MB over 200 in-place adds on a 4 MB tensor", grown>>20)
	}
	if v := x.MustMean(gotch.Float, false).Float64Values(true)[0]; v != 200 {
		t.Fatalf("after 200 adds of 1, mean = %v", v)
	}
}

// TestMultiOutputOps: unpatched, ops with several outputs wrote their handles past a malloc(0)
// buffer. Run many 2- and 4-output ops and check their results.
func TestMultiOutputOps(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x, err := ts.NewTensorFromData([]float32{3, 1, 2, 9, 7, 8}, []int64{2, 3})
	if err != nil {
		t.Fatal(err)
	}
	defer x.MustDrop()
	w := ts.MustOfSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8}).MustView([]int64{4, 2}, true) // (4, 2)
	idx4 := ts.MustOfSlice([]int64{0, 1, 2, 3})
	offsets := ts.MustOfSlice([]int64{0, 2})
	defer w.MustDrop()
	defer idx4.MustDrop()
	defer offsets.MustDrop()
	for i := 0; i < 2000; i++ {
		vals, idx, err := x.MaxDim(1, false, false)
		if err != nil {
			t.Fatal(err)
		}
		if v, j := vals.Float64Values(true), idx.Int64Values(true); v[0] != 3 || v[1] != 9 || j[0] != 0 || j[1] != 0 {
			t.Fatalf("max over rows = %v at %v", v, j)
		}
		sums, b, c, d, err := ts.EmbeddingBag(w, idx4, offsets, false, 0, false, ts.None, false) // 4 outputs
		if err != nil {
			t.Fatal(err)
		}
		if got := sums.Float64Values(true); got[0] != 4 || got[1] != 6 || got[2] != 12 || got[3] != 14 {
			t.Fatalf("embedding bag sums = %v, want [4 6 12 14]", got)
		}
		b.MustDrop()
		c.MustDrop()
		d.MustDrop()
	}
}

func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip("no /proc/self/statm")
	}
	pages, err := strconv.ParseInt(strings.Fields(string(b))[1], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return pages * int64(os.Getpagesize())
}

// TestGradModeRestores: unpatched, GradSetEnabled read a 4-byte C int as an 8-byte Go int and
// reported garbage as the previous state, so restoring grad mode after a no-grad region failed.
func TestGradModeRestores(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for _, want := range []bool{true, false, true} {
		if _, err := ts.GradSetEnabled(want); err != nil {
			t.Fatal(err)
		}
		got, err := ts.GradSetEnabled(want)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("grad mode set to %t reads back as %t", want, got)
		}
	}
	x := ts.MustZeros([]int64{2}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	if dev := x.MustDevice(); dev.IsCuda() || dev.Name != "CPU" {
		t.Fatalf("a CPU tensor reports device %v", dev)
	}
}
