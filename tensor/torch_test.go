package tensor

import (
	"context"
	"errors"
	"math"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestRoundTrip moves data Go → tensor → matmul → backward → Go and checks every value against
// the same computation done by hand: y = sum(A·B), dy/dA = 1·Bᵀ row sums, dy/dB = Aᵀ·1.
func TestRoundTrip(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	a := []float32{1, 2, 3, 4, 5, 6}    // (2, 3)
	b := []float32{7, 8, 9, 10, 11, 12} // (3, 2)
	at := mustTensor(t, a, 2, 3).MustSetRequiresGrad(true, true)
	bt := mustTensor(t, b, 3, 2).MustSetRequiresGrad(true, true)
	defer at.MustDrop()
	defer bt.MustDrop()

	prod, err := at.Matmul(bt, false) // (2, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer prod.MustDrop()
	got := prod.Float64Values()
	want := []float64{58, 64, 139, 154}
	assertClose(t, "A·B", got, want)

	sum := prod.MustSum(gotch.Float, false)
	defer sum.MustDrop()
	if err := sum.Backward(); err != nil {
		t.Fatal(err)
	}
	ga, gb := at.MustGrad(false), bt.MustGrad(false)
	defer ga.MustDrop()
	defer gb.MustDrop()
	// d sum(AB)/dA[i,k] = sum_j B[k,j]; d/dB[k,j] = sum_i A[i,k].
	assertClose(t, "dA", ga.Float64Values(), []float64{15, 19, 23, 15, 19, 23})
	assertClose(t, "dB", gb.Float64Values(), []float64{5, 5, 7, 7, 9, 9})
}

// TestStubbedOpErrors calls an op this libtorch lacks: it must come back as an error, after which
// the process keeps working.
func TestStubbedOpErrors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	stubs := StubbedOps()
	if !slices.Contains(stubs, "atg_scaled_dot_product_attention") {
		t.Skipf("scaled_dot_product_attention is available in libtorch %s", ReadInfo().Version)
	}
	q := mustTensor(t, make([]float32, 8), 1, 2, 4)
	defer q.MustDrop()
	_, err := ts.ScaledDotProductAttention(q, q, q, ts.None, 0, false, nil)
	if err == nil || !strings.Contains(err.Error(), "not available") {
		t.Fatalf("stubbed op: got error %v, want one saying it is not available", err)
	}
	sum := q.MustSum(gotch.Float, false)
	defer sum.MustDrop()
	if v := sum.Float64Values()[0]; v != 0 {
		t.Fatalf("after a stubbed op, sum = %v, want 0", v)
	}
}

func TestInfoFromLibtorch(t *testing.T) {
	if err := SetThreads(2); err != nil {
		t.Fatal(err)
	}
	info := ReadInfo()
	if info.Version == "" || !strings.Contains(info.Parallel, "ATen") {
		t.Fatalf("info not read from libtorch: %+v", info)
	}
	if info.Threads != 2 {
		t.Fatalf("threads = %d after SetThreads(2)", info.Threads)
	}
	if info.OpenBLASThread != 0 && info.OpenBLASThread != 2 {
		t.Fatalf("OpenBLAS threads = %d, want 2", info.OpenBLASThread)
	}
	if SetThreads(0) == nil {
		t.Fatal("SetThreads(0) accepted")
	}
}

func mustTensor(t *testing.T, data []float32, shape ...int64) *ts.Tensor {
	t.Helper()
	x, err := ts.NewTensorFromData(data, shape)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func assertClose(t *testing.T, what string, got, want []float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d values, want %d", what, len(got), len(want))
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-5 {
			t.Fatalf("%s[%d] = %v, want %v", what, i, got[i], want[i])
		}
	}
}

// TestWorkerKeepsThreadState: grad mode set in one Do is still set in the next, because both run on
// the same OS thread; a plain goroutine would not see it.
func TestWorkerKeepsThreadState(t *testing.T) {
	w := NewWorker()
	defer w.Close()
	ctx := context.Background()
	if err := w.Do(ctx, func() error { _, err := ts.GradSetEnabled(false); return err }); err != nil {
		t.Fatal(err)
	}
	var was bool
	if err := w.Do(ctx, func() error { var err error; was, err = ts.GradSetEnabled(true); return err }); err != nil {
		t.Fatal(err)
	}
	if was {
		t.Fatal("grad mode set off in one Do was on in the next")
	}
	w.Close()
	if err := w.Do(ctx, func() error { return nil }); !errors.Is(err, ErrWorkerClosed) {
		t.Fatalf("Do after Close: %v", err)
	}
}

// TestOnWorker: f runs once, on a thread whose grad mode it can change without touching the
// caller's, and its error comes back.
func TestOnWorker(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if _, err := ts.GradSetEnabled(true); err != nil {
		t.Fatal(err)
	}
	want := errors.New("from f")
	calls := 0
	err := OnWorker(func() error {
		calls++
		if _, err := ts.GradSetEnabled(false); err != nil {
			return err
		}
		return want
	})
	if !errors.Is(err, want) || calls != 1 {
		t.Fatalf("OnWorker: %v after %d calls, want %v after 1", err, calls, want)
	}
	on, err := ts.GradSetEnabled(true)
	if err != nil || !on {
		t.Fatalf("caller's grad mode after OnWorker: %v, %v; want on", on, err)
	}
}
