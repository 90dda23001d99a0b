package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// maxLogRatio bounds log-ratios of probabilities before they are exponentiated. A token one policy
// finds nearly impossible (log-prob −100) would otherwise make exp overflow to inf, and inf·0 in the
// backward pass is NaN; e^20 ≈ 5·10⁸ is far outside every clip range, so no clipped loss changes.
const maxLogRatio = 20

// logRatio is clamp(logA − logB, ±maxLogRatio) elementwise: log(π_A/π_B) at the sampled tokens.
func logRatio(tp *tensor.Scope, logA, logB *ts.Tensor) *ts.Tensor {
	d := tp.T(logA.Sub(logB, false))
	return tp.T(d.Clamp(tp.Scalar(-maxLogRatio), tp.Scalar(maxLogRatio), false))
}

// ratio is exp(logRatio(logA, logB)): π_A/π_B at the sampled tokens.
func ratio(tp *tensor.Scope, logA, logB *ts.Tensor) *ts.Tensor {
	return tp.T(logRatio(tp, logA, logB).Exp(false))
}
