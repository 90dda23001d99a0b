// Package optim turns gradients into weight updates for the learner: AdamW with decoupled weight
// decay (Loshchilov & Hutter, arXiv 1711.05101), clipping by the global gradient norm, a linear
// warmup + linear decay learning-rate schedule, and the optimizer state a checkpoint needs.
//
// It works on a model's []tensor.Param directly with tensor ops, on the weights' own device. gotch's
// nn.Optimizer is not used: it wants a VarStore, and its ClipGradNorm deadlocks (docs/gotch.md).
//
// A step, in the caller's order:
//
//  1. ZeroGrad(params), then run forward and backward passes (accumulating gradients).
//  2. ClipGradNorm(params, cfg.MaxGradNorm): an ErrNonFinite result means skip the update.
//  3. AdamW.Step(): one update at the schedule's learning rate for this step.
//
// Like all tensor code in tsd, every function here must run on a goroutine locked to its OS thread.
package optim
