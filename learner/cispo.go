package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// cispo is the clipped importance-sampling policy objective of MiniMax-M1 (arXiv 2506.13585, eq. 4),
// as a loss per generated token:
//
//	r_t = π_θ(a_t | s_t) / π_b(a_t | s_t)
//	w_t = sg(clip(r_t, 0, 1 + ε_high))              (sg: stop-gradient)
//	L_t = −w_t · A_t · log π_θ(a_t | s_t)
//
// so ∇L_t = −clip(r_t)·A_t·∇log π_θ. Unlike PPO-clip no token ever loses its gradient: clipping
// bounds the importance weight instead of dropping the token, which keeps the rare, high-ratio
// tokens (often the "reflection" forks of a reasoning trace) in the update. The published form has
// no lower clip by default; clipping to [0, 1 + ε_high] adds a lower bound of 0, a no-op for r_t ≥ 0.
//
// All inputs are (B, T); logp carries the gradient. It returns the loss (B, T) and, as 0/1, whether
// each token's weight was clipped (r_t > 1 + ε_high).
func cispo(tp *tensor.Scope, logp, logpOld, adv *ts.Tensor, epsHigh float64) (loss, clipped *ts.Tensor) {
	r := ratio(tp, logp, logpOld)                                 // r_t
	w := tp.T(r.Clamp(tp.Scalar(0), tp.Scalar(1+epsHigh), false)) // clip(r_t, 0, 1+ε_high)
	w = tp.T(w.Detach(false))                                     // sg(·)
	weighted := tp.T(tp.T(w.Mul(adv, false)).Mul(logp, false))    // w_t·A_t·log π_θ
	loss = tp.T(weighted.Neg(false))                              // −(·)
	clipped = outside(tp, r, 0, 1+epsHigh)
	return loss, clipped
}
