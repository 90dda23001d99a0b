package learner

import "math"

// Advantages say how much better than expected each generated token turned out. Both estimators
// here are plain Go over one completion (or one group), so they are checked by hand in tests; the
// trainer copies their results into tensors.

// gae is generalised advantage estimation (Schulman et al., arXiv 1506.02438) over one completion
// of L tokens whose reward R arrives with its last token. values[t] = V(s_t), the value head at the
// state in which token t was chosen (detached: advantages are targets, not graph).
//
//	r_t = R·[t = L−1],   V(s_L) = 0                  (the completion ends the episode)
//	δ_t = r_t + γ·V(s_{t+1}) − V(s_t)
//	A_t = δ_t + γλ·A_{t+1},   A_L = 0
//	G_t = A_t + V(s_t)                                (the λ-return: the value head's target)
//
// With γ = λ = 1 (the source) the sum telescopes to A_t = R − V(s_t) and G_t = R.
func gae(values []float64, reward, gamma, lambda float64) (adv, ret []float64) {
	L := len(values)
	adv, ret = make([]float64, L), make([]float64, L)
	next, nextV := 0.0, 0.0 // A_{t+1}, V(s_{t+1})
	for t := L - 1; t >= 0; t-- {
		r := 0.0
		if t == L-1 {
			r = reward
		}
		delta := r + gamma*nextV - values[t]
		adv[t] = delta + gamma*lambda*next
		ret[t] = adv[t] + values[t]
		next, nextV = adv[t], values[t]
	}
	return adv, ret
}

// groupEps keeps a group whose rewards are all equal from dividing by zero: its advantages are 0.
const groupEps = 1e-6

// groupAdvantages normalises the rewards of G samples of one prompt (GRPO, arXiv 2402.03300 §4.1.2;
// CISPO uses the same):
//
//	Â_i = (R_i − mean(R)) / (std(R) + 1e-6)
//
// with the sample standard deviation (Bessel's correction, as torch.std computes it). Every token of
// sample i gets Â_i. A group needs at least two samples.
func groupAdvantages(rewards []float64) []float64 {
	n := float64(len(rewards))
	mean := 0.0
	for _, r := range rewards {
		mean += r
	}
	mean /= n
	ss := 0.0
	for _, r := range rewards {
		ss += (r - mean) * (r - mean)
	}
	std := math.Sqrt(ss / (n - 1))
	out := make([]float64, len(rewards))
	for i, r := range rewards {
		out[i] = (r - mean) / (std + groupEps)
	}
	return out
}
