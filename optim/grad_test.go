package optim

import (
	"errors"
	"math"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

func TestClipGradNorm(t *testing.T) {
	tensortest.LockThread(t)
	cases := []struct {
		name     string
		maxNorm  float64
		wantNorm float64
		wantA    []float64 // a's gradient afterwards
	}{
		{"clipped", 1, 13, []float64{3 / (13 + 1e-6), 4 / (13 + 1e-6)}},
		{"under the limit", 20, 13, []float64{3, 4}},
		{"exactly the limit", 13, 13, []float64{3, 4}},
		{"no clipping", 0, 13, []float64{3, 4}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensortest.LockThread(t)
			a := leaf(t, "a", gotch.Double, []float64{0, 0})
			b := leaf(t, "b", gotch.Float, []float64{0})
			none := leaf(t, "no-grad", gotch.Float, []float64{5})
			addGrad(t, a, []float64{3, 4})
			addGrad(t, b, []float64{12})
			params := []tensor.Param{a, none, b}
			norm, err := ClipGradNorm(params, c.maxNorm)
			if err != nil {
				t.Fatal(err)
			}
			if math.Abs(norm-c.wantNorm) > 1e-6 {
				t.Fatalf("norm %v, want %v", norm, c.wantNorm)
			}
			got := gradValues(t, a)
			for i := range got {
				if math.Abs(got[i]-c.wantA[i]) > 1e-12 {
					t.Fatalf("a.grad = %v, want %v", got, c.wantA)
				}
			}
			if gradValues(t, none) != nil {
				t.Fatal("clipping defined a gradient that was undefined")
			}
		})
	}
}

// TestClipGradNormNonFinite: a NaN or infinite gradient is reported and nothing is scaled.
func TestClipGradNormNonFinite(t *testing.T) {
	tensortest.LockThread(t)
	for _, bad := range []float64{math.NaN(), math.Inf(1)} {
		a := leaf(t, "a", gotch.Float, []float64{0, 0})
		b := leaf(t, "b", gotch.Float, []float64{0})
		addGrad(t, a, []float64{30, 40})
		addGrad(t, b, []float64{bad})
		if _, err := ClipGradNorm([]tensor.Param{a, b}, 1); !errors.Is(err, ErrNonFinite) {
			t.Fatalf("gradient %v: got %v, want ErrNonFinite", bad, err)
		}
		if got := gradValues(t, a); got[0] != 30 || got[1] != 40 {
			t.Fatalf("gradients scaled despite the error: %v", got)
		}
	}
	if _, err := ClipGradNorm(nil, -1); !errors.Is(err, ErrConfig) {
		t.Fatalf("negative max norm: got %v, want ErrConfig", err)
	}
}

func TestZeroGrad(t *testing.T) {
	tensortest.LockThread(t)
	a := leaf(t, "a", gotch.Float, []float64{1, 2})
	none := leaf(t, "none", gotch.Float, []float64{1})
	addGrad(t, a, []float64{3, 4})
	if err := ZeroGrad([]tensor.Param{a, none}); err != nil {
		t.Fatal(err)
	}
	if got := gradValues(t, a); got[0] != 0 || got[1] != 0 {
		t.Fatalf("a.grad = %v after ZeroGrad", got)
	}
	if gradValues(t, none) != nil {
		t.Fatal("ZeroGrad defined an undefined gradient")
	}
	norm, err := ClipGradNorm([]tensor.Param{none}, 1)
	if err != nil || norm != 0 {
		t.Fatalf("norm of no gradients = %v, %v; want 0", norm, err)
	}
}
