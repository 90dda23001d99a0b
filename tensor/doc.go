// Package tensor is tsd's tensor runtime: everything between the model code and gotch's ts
// package that is about running tensors rather than about a model. It owns
//
//   - Scope, the lifetime of temporaries. gotch tensors hold C memory the Go GC cannot see
//     (docs/gotch.md), so every function that runs tensor ops records each tensor it makes on a
//     Scope and frees the scope on return, except what it hands to its caller (Detach, or Free's
//     keep list). Tensors handed out are owned by the caller, who drops them, or by a type with
//     Close. Freeing a handle does not free what autograd still needs: the graph keeps its own
//     references, so a scope can be freed between forward and backward.
//   - ErrTorch, the one sentinel for errors libtorch raised. Inside a scope such an error becomes
//     a panic carrying Error; the exported function turns it back with `defer tensor.Catch(&err)`.
//     Shapes are checked where data enters, so such an error means something outside the caller's
//     control (out of memory, an op missing from this libtorch), not bad input.
//   - Worker, the one OS thread a model's tensor work runs on (libtorch keeps grad mode and its
//     last error per thread).
//   - Param, a named weight, the unit optimizers and checkpoints work on, and safetensors files
//     (Hugging Face's checkpoint format) of named tensors.
//   - Process-wide settings (threads, seed) and the facts `tsd doctor` reports.
//
// The name says what the package is about from the caller's side (tensors and their runtime);
// "tape" would suggest an autograd tape and "torch" the library it wraps, and neither clashes
// with gotch's ts.
package tensor

import (
	"errors"

	"github.com/sugarme/gotch/ts"
)

// ErrTorch wraps an error libtorch raised (out of memory, an op missing from this libtorch).
// Callers test it with errors.Is.
var ErrTorch = errors.New("libtorch")

// Errors of this package besides ErrTorch.
var (
	// ErrSafetensors is a safetensors file that is missing, truncated or malformed.
	ErrSafetensors = errors.New("safetensors")
	// ErrInput is a request with bad arguments (a nil tensor, an unsupported dtype).
	ErrInput = errors.New("tensor input")
)

// Param is one named weight. The tensor stays owned by whoever made it (a model).
type Param struct {
	Name   string
	Tensor *ts.Tensor
}
