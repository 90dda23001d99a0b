package tensor

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// TestSaveLoadTensors: float and integer tensors come back with the same dtype, shape and bytes.
func TestSaveLoadTensors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ts.ManualSeed(3)
	a := ts.MustRandn([]int64{3, 5}, gotch.Float, gotch.CPU)
	defer a.MustDrop()
	n := ts.MustOfSlice([]int64{7, -2, 1 << 40})
	defer n.MustDrop()
	path := filepath.Join(t.TempDir(), "state.safetensors")
	if err := SaveTensors(path, map[string]*ts.Tensor{"a.exp_avg": a, "a.step": n}, gotch.Float); err != nil {
		t.Fatal(err)
	}
	got, err := LoadTensors(path, gotch.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, x := range got {
			x.MustDrop()
		}
	}()
	if len(got) != 2 {
		t.Fatalf("loaded %d tensors, want 2", len(got))
	}
	if g := got["a.step"]; g.DType() != gotch.Int64 || !slices.Equal(Int64s(g), []int64{7, -2, 1 << 40}) {
		t.Errorf("a.step: %v %v", g.DType(), Int64s(g))
	}
	want, back := Float32s(a), Float32s(got["a.exp_avg"])
	if shape := got["a.exp_avg"].MustSize(); !slices.Equal(shape, []int64{3, 5}) {
		t.Errorf("shape %v", shape)
	}
	for i := range want {
		if want[i] != back[i] {
			t.Fatalf("a.exp_avg[%d]: %v, want %v", i, back[i], want[i])
		}
	}
}

func TestSaveLoadTensorsErrors(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dir := t.TempDir()
	x := ts.MustZeros([]int64{2}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	truncated := filepath.Join(dir, "truncated.safetensors")
	if err := SaveTensors(truncated, map[string]*ts.Tensor{"x": x}, gotch.Float); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(truncated)
	if err := os.WriteFile(truncated, b[:len(b)-3], 0o644); err != nil {
		t.Fatal(err)
	}
	t.Run("half dtype", func(t *testing.T) {
		err := SaveTensors(filepath.Join(dir, "h.safetensors"), map[string]*ts.Tensor{"x": x}, gotch.Half)
		if !errors.Is(err, ErrInput) {
			t.Fatalf("got %v, want ErrInput", err)
		}
	})
	t.Run("nil tensor", func(t *testing.T) {
		err := SaveTensors(filepath.Join(dir, "n.safetensors"), map[string]*ts.Tensor{"x": nil}, gotch.Float)
		if !errors.Is(err, ErrInput) {
			t.Fatalf("got %v, want ErrInput", err)
		}
	})
	for name, path := range map[string]string{"missing": filepath.Join(dir, "nope"), "truncated": truncated} {
		t.Run(name, func(t *testing.T) {
			if _, err := LoadTensors(path, gotch.CPU); !errors.Is(err, ErrSafetensors) {
				t.Fatalf("got %v, want ErrSafetensors", err)
			}
		})
	}
}
