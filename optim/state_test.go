package optim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"tsd/tensor"
	"tsd/tensor/tensortest"
)

// twin makes two identical parameter sets: a bf16 weight (with a master copy) and an f32 one.
func twin(t *testing.T) (a, b []tensor.Param) {
	mk := func() []tensor.Param {
		return []tensor.Param{
			leaf(t, "x", gotch.BFloat16, []float64{0.5, -0.25, 0.125}),
			leaf(t, "y", gotch.Float, []float64{1, 2}),
		}
	}
	return mk(), mk()
}

func stepWith(t *testing.T, o *AdamW, params []tensor.Param, k int) {
	t.Helper()
	if err := ZeroGrad(params); err != nil {
		t.Fatal(err)
	}
	addGrad(t, params[0], []float64{0.1 * float64(k), -0.2, 0.3})
	addGrad(t, params[1], []float64{-1, float64(k)})
	if _, err := o.Step(); err != nil {
		t.Fatal(err)
	}
}

// TestSaveLoadContinuesBitExact: an optimizer loaded from a saved state (into weights equal to the
// saved ones) takes the next step to the same bits as the one that kept running.
func TestSaveLoadContinuesBitExact(t *testing.T) {
	tensortest.LockThread(t)
	pa, pb := twin(t)
	cfg := DefaultConfig()
	cfg.LR, cfg.WarmupSteps, cfg.DecaySteps = 1e-2, 2, 10
	oa, err := NewAdamW(pa, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	for k := 0; k < 3; k++ {
		stepWith(t, oa, pa, k)
	}
	path := filepath.Join(t.TempDir(), "optim.safetensors")
	if err := oa.Save(path); err != nil {
		t.Fatal(err)
	}
	ob, err := NewAdamW(pb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ob.Close()
	if err := ob.Load(path); err != nil {
		t.Fatal(err)
	}
	// The f32 weight comes from the model checkpoint in real use; copy it here.
	tensor.NoGrad(func() { pb[1].Tensor.Copy_(pa[1].Tensor) })
	if ob.Steps() != 3 || ob.LR() != oa.LR() {
		t.Fatalf("loaded steps %d lr %v, want 3 and %v", ob.Steps(), ob.LR(), oa.LR())
	}
	stepWith(t, oa, pa, 3)
	stepWith(t, ob, pb, 3)
	for i := range pa {
		if !bytes.Equal(rawBytes(pa[i].Tensor), rawBytes(pb[i].Tensor)) {
			t.Errorf("%s: %v after resume, %v uninterrupted", pa[i].Name, values(t, pb[i].Tensor), values(t, pa[i].Tensor))
		}
		if !bytes.Equal(rawBytes(oa.slots[i].v), rawBytes(ob.slots[i].v)) {
			t.Errorf("%s: second moments differ", pa[i].Name)
		}
	}
}

func TestLoadRejectsForeignState(t *testing.T) {
	tensortest.LockThread(t)
	pa, _ := twin(t)
	oa, err := NewAdamW(pa, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer oa.Close()
	dir := t.TempDir()
	path := filepath.Join(dir, "optim.safetensors")
	if err := oa.Save(path); err != nil {
		t.Fatal(err)
	}
	other := func(params ...tensor.Param) *AdamW {
		o, err := NewAdamW(params, DefaultConfig())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(o.Close)
		return o
	}
	garbage := filepath.Join(dir, "garbage")
	if err := os.WriteFile(garbage, []byte("not a safetensors file"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		o    *AdamW
		path string
	}{
		"fewer weights":  {other(leaf(t, "x", gotch.BFloat16, []float64{1, 2, 3})), path},
		"more weights":   {other(append(pa[:2:2], leaf(t, "z", gotch.Float, []float64{1}))...), path},
		"other shape":    {other(leaf(t, "x", gotch.BFloat16, []float64{1, 2}), leaf(t, "y", gotch.Float, []float64{1, 2})), path},
		"no master":      {other(leaf(t, "x", gotch.Float, []float64{1, 2, 3}), leaf(t, "y", gotch.Float, []float64{1, 2})), path},
		"f64 moments":    {other(leaf(t, "x", gotch.BFloat16, []float64{1, 2, 3}), leaf(t, "y", gotch.Double, []float64{1, 2})), path},
		"missing file":   {other(pa...), filepath.Join(dir, "nope")},
		"not the format": {other(pa...), garbage},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tensortest.LockThread(t)
			before := c.o.Steps()
			if err := c.o.Load(c.path); !errors.Is(err, ErrState) {
				t.Fatalf("got %v, want ErrState", err)
			}
			if c.o.Steps() != before {
				t.Fatal("a failed load changed the state")
			}
		})
	}
}
