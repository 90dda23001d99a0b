package optim

import (
	"fmt"
	"slices"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/tensor"
)

// The state file is one safetensors file; per weight named n it holds
//
//	n.exp_avg, n.exp_avg_sq   the moments (f32, or f64 for f64 weights)
//	n.master                  the f32 master copy of a bf16/f16 weight
//	n.step                    int64 [1]: updates the weight received
//
// and "optim.steps" (int64 [1]), the schedule's position. Moments are stored in their own dtype, so
// a loaded optimizer continues bit for bit.
const stepsName = "optim.steps"

// Save writes the optimizer's state to path atomically.
func (o *AdamW) Save(path string) (err error) {
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	out := map[string]*ts.Tensor{stepsName: tp.T(int64Tensor(o.steps))}
	for i, p := range o.params {
		s := &o.slots[i]
		out[p.Name+".exp_avg"] = s.m
		out[p.Name+".exp_avg_sq"] = s.v
		if s.master != nil {
			out[p.Name+".master"] = s.master
		}
		out[p.Name+".step"] = tp.T(int64Tensor(s.steps))
	}
	return tensor.SaveTensors(path, out, o.slots[0].m.DType())
}

func int64Tensor(v int64) (*ts.Tensor, error) {
	return ts.OfSlice([]int64{v})
}

// Load replaces the optimizer's state with the one saved at path. The file must hold exactly the
// state of this optimizer's weights (same names, shapes and dtypes); otherwise nothing changes and
// ErrState is returned.
func (o *AdamW) Load(path string) (err error) {
	dev, err := o.params[0].Tensor.Device()
	if err != nil {
		return fmt.Errorf("%w: %v", tensor.ErrTorch, err)
	}
	loaded, err := tensor.LoadTensors(path, dev)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	keep := map[*ts.Tensor]bool{}
	defer func() {
		for _, x := range loaded {
			if !keep[x] {
				x.MustDrop()
			}
		}
	}()
	defer tensor.Catch(&err)
	if err := o.checkState(loaded); err != nil {
		return err
	}
	o.steps = scalarInt64(loaded[stepsName])
	for i, p := range o.params {
		s := &o.slots[i]
		s.steps = scalarInt64(loaded[p.Name+".step"])
		swap(&s.m, loaded[p.Name+".exp_avg"], keep)
		swap(&s.v, loaded[p.Name+".exp_avg_sq"], keep)
		if s.master != nil {
			swap(&s.master, loaded[p.Name+".master"], keep)
			tensor.NoGrad(func() { p.Tensor.Copy_(s.master) })
		}
	}
	return nil
}

// checkState reports the first tensor of a loaded state that does not fit this optimizer.
func (o *AdamW) checkState(loaded map[string]*ts.Tensor) error {
	want := map[string]*ts.Tensor{stepsName: nil}
	for i, p := range o.params {
		s := &o.slots[i]
		want[p.Name+".exp_avg"], want[p.Name+".exp_avg_sq"], want[p.Name+".step"] = s.m, s.v, nil
		if s.master != nil {
			want[p.Name+".master"] = s.master
		}
	}
	for name := range loaded {
		if _, ok := want[name]; !ok {
			return fmt.Errorf("%w: tensor %s belongs to no weight of this optimizer", ErrState, name)
		}
	}
	for name, like := range want {
		x, ok := loaded[name]
		if !ok {
			return fmt.Errorf("%w: tensor %s is missing", ErrState, name)
		}
		if err := sameKind(name, x, like); err != nil {
			return err
		}
		if like == nil && scalarInt64(x) < 0 {
			return fmt.Errorf("%w: step counter %s is negative", ErrState, name)
		}
	}
	return nil
}

// sameKind checks x against the tensor it replaces (like), or against int64 [1] for step counters.
func sameKind(name string, x, like *ts.Tensor) error {
	wantDT, wantShape := gotch.Int64, []int64{1}
	if like != nil {
		wantDT = like.DType()
		var err error
		if wantShape, err = like.Size(); err != nil {
			return fmt.Errorf("%w: %v", tensor.ErrTorch, err)
		}
	}
	shape, err := x.Size()
	if err != nil {
		return fmt.Errorf("%w: %v", tensor.ErrTorch, err)
	}
	if x.DType() != wantDT || !slices.Equal(shape, wantShape) {
		return fmt.Errorf("%w: tensor %s is %v%v, want %v%v", ErrState, name, x.DType(), shape, wantDT, wantShape)
	}
	return nil
}

func swap(dst **ts.Tensor, x *ts.Tensor, keep map[*ts.Tensor]bool) {
	(*dst).MustDrop()
	*dst = x
	keep[x] = true
}

func scalarInt64(x *ts.Tensor) int64 {
	if dev, _ := x.Device(); dev.IsCuda() {
		var err error
		x, err = x.To(gotch.CPU, false)
		tensor.Check(err)
		defer x.MustDrop()
	}
	out := make([]int64, 1)
	tensor.Check(x.CopyData(out, 1))
	return out[0]
}
