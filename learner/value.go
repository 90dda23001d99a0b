package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// valueLoss is the value head's regression to the return at every generated token:
//
//	L_t = (V_θ(s_t) − G_t)²
//
// G_t is the λ-return from gae, which with γ = λ = 1 (the source) is the trajectory's reward R: the
// head learns to predict, at each reasoning state, the reward the search's trajectory finally got,
// which is what MCTS uses as its leaf value. values and returns are (B, T); values carries the
// gradient.
func valueLoss(tp *tensor.Scope, values, returns *ts.Tensor) *ts.Tensor {
	diff := tp.T(values.Sub(returns, false)) // V_θ(s_t) − G_t
	return tp.T(diff.Square(false))
}
