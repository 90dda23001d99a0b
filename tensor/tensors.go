package tensor

// Named tensors in a safetensors file: an optimizer keeps tensors (Adam moments, step counts) that
// are not weights but must be checkpointed next to them, in the same format.

import (
	"fmt"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SaveTensors writes named tensors to a safetensors file at path, atomically (temporary file, fsync,
// rename). Float tensors are stored as dtype (gotch.Float, gotch.Double or gotch.BFloat16); integer
// tensors keep their own dtype. The tensors stay owned by the caller.
func SaveTensors(path string, tensors map[string]*ts.Tensor, dtype gotch.DType) error {
	if dtype != gotch.Float && dtype != gotch.Double && dtype != gotch.BFloat16 {
		return fmt.Errorf("%w: save dtype %v (f32, f64 or bf16)", ErrInput, dtype)
	}
	for name, x := range tensors {
		if x == nil {
			return fmt.Errorf("%w: tensor %s is nil", ErrInput, name)
		}
	}
	return WriteSafetensors(path, tensors, dtype, nil)
}

// LoadTensors reads every tensor of a safetensors file onto dev, each in its stored dtype. The
// caller owns the returned tensors; on error none are left allocated.
func LoadTensors(path string, dev gotch.Device) (_ map[string]*ts.Tensor, err error) {
	f, err := OpenSafetensors(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names := f.Names()
	out := make(map[string]*ts.Tensor, len(names))
	defer func() {
		if err != nil {
			for _, x := range out {
				x.MustDrop()
			}
		}
	}()
	for _, name := range names {
		x, err := f.Load(name)
		if err != nil {
			return nil, err
		}
		out[name] = x
		if dev != gotch.CPU {
			moved, err := x.To(dev, false)
			if err != nil {
				return nil, fmt.Errorf("%w: moving %s to %v: %v", ErrTorch, name, dev, err)
			}
			x.MustDrop()
			out[name] = moved
		}
	}
	return out, nil
}
