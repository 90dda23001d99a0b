package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// grpo is Group Relative Policy Optimization (DeepSeekMath, arXiv 2402.03300, eq. 3): PPO-clip with
// no value head, the baseline coming from the other samples of the same prompt instead. For G
// samples o_1..o_G of one prompt with rewards R_i, every token of o_i gets the same advantage
//
//	Â_{i,t} = (R_i − mean(R)) / (std(R) + 1e-6)                      (groupAdvantages)
//	L_{i,t} = −min(r_{i,t}·Â_i, clip(r_{i,t}, 1 − ε, 1 + ε)·Â_i)      (ppoClip)
//
// and the KL penalty to the reference model is the same k3 term the trainer adds for every
// algorithm. The AlgoCISPO baseline uses the same group advantages with the cispo loss.
func grpo(tp *tensor.Scope, logp, logpOld, groupAdv *ts.Tensor, eps float64) (loss, clipped *ts.Tensor) {
	return ppoClip(tp, logp, logpOld, groupAdv, eps)
}
