package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// klK3 estimates KL(π_θ ‖ π_ref) per generated token with Schulman's k3 estimator
// (http://joschu.net/blog/kl-approx.html), as GRPO does:
//
//	ρ_t = π_ref(a_t | s_t) / π_θ(a_t | s_t)
//	k3_t = (ρ_t − 1) − log ρ_t
//
// Since log x ≤ x − 1, k3_t ≥ 0 for every token, with equality exactly when the policies agree on
// it; under samples from π_θ its mean is the true KL, with lower variance than −log ρ. π_ref is the
// frozen initial model, so the term keeps the distilled policy near where it started. logp carries
// the gradient; logpRef is detached. Both are (B, T).
func klK3(tp *tensor.Scope, logp, logpRef *ts.Tensor) *ts.Tensor {
	logRho := logRatio(tp, logpRef, logp)                                    // log ρ_t
	rho := tp.T(logRho.Exp(false))                                           // ρ_t
	return tp.T(tp.T(rho.SubScalar(tp.Scalar(1), false)).Sub(logRho, false)) // (ρ_t − 1) − log ρ_t
}
