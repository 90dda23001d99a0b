package learner

import (
	"github.com/sugarme/gotch/ts"

	"tsd/model"
	"tsd/tensor"
)

// The batch loss, token-level: every term ℓ is per generated token, averaged over each sequence's
// completion, then over the n sequences of the step:
//
//	loss = (1/n) Σ_b (1/L_b) Σ_{t ∈ completion b} ℓ_{b,t}
//	ℓ    = policy + c_v·value + c_kl·k3 − c_H·entropy
//
// Positions are those of model.Scores: completion token i of a sequence with a prompt of P tokens
// is predicted at position P−1+i, where Values holds V(s_i).

// batchInputs are a micro-batch's per-position inputs, (B, T−1) each, detached.
type batchInputs struct {
	mask   *ts.Tensor // 1 at completion tokens, 0 at prompt and padding
	weight *ts.Tensor // 1/(L_b·n) at completion tokens: Σ weight⊙ℓ is the micro-batch's share of the loss
	old    *ts.Tensor // log π_b, the behaviour log-probs (0 elsewhere)
	adv    *ts.Tensor // advantages
	ret    *ts.Tensor // value targets G_t
}

// inputs lays out the micro-batch's per-token data on the host and copies it to the device. For
// single-trajectory algorithms it reads the value head's outputs (detached) to compute GAE.
func (t *Trainer) inputs(tp *tensor.Scope, mb []sample, n int, sc *model.Scores, acc *tally) batchInputs {
	shape, err := sc.LogProbs.Size()
	tensor.Check(err)
	B, T1 := int(shape[0]), int(shape[1])
	var values []float64
	if !t.cfg.group() {
		values = tensor.Float64s(sc.Values) // (B·(T−1))
	}
	mask, weight := make([]float64, B*T1), make([]float64, B*T1)
	old, adv, ret := make([]float64, B*T1), make([]float64, B*T1), make([]float64, B*T1)
	for b, s := range mb {
		L, first := s.completion(), b*T1+s.prompt-1
		a, g := t.advantages(s, values, first)
		for i := 0; i < L; i++ {
			k := first + i
			mask[k], weight[k] = 1, 1/float64(L*n)
			old[k], adv[k], ret[k] = float64(s.behaviour[i]), a[i], g[i]
			acc.adv += weight[k] * a[i]
			if t.cfg.trainsValue() {
				acc.valueMean += weight[k] * values[k]
			}
		}
	}
	dt, dev := sc.LogProbs.DType(), t.policy.Device()
	tensor := func(x []float64) *ts.Tensor { return tensor.FromFloat64s(tp, x, shape, dt, dev) }
	return batchInputs{mask: tensor(mask), weight: tensor(weight), old: tensor(old), adv: tensor(adv), ret: tensor(ret)}
}

// advantages returns A_t and G_t for each completion token of s: the group advantage for group
// algorithms, GAE over the values at positions first.. otherwise.
func (t *Trainer) advantages(s sample, values []float64, first int) (adv, ret []float64) {
	L := s.completion()
	if t.cfg.group() {
		adv, ret = make([]float64, L), make([]float64, L)
		for i := range adv {
			adv[i], ret[i] = s.groupAdv, s.reward
		}
		return adv, ret
	}
	return gae(values[first:first+L], s.reward, t.cfg.Gamma, t.cfg.Lambda)
}

// loss builds the micro-batch's share of the batch loss (a scalar to call Backward on) and adds
// each term's share to acc.
func (t *Trainer) loss(tp *tensor.Scope, in batchInputs, sc *model.Scores, refLP *ts.Tensor, acc *tally) *ts.Tensor {
	logp := tp.T(sc.LogProbs.Mul(in.mask, false)) // padding → 0, so no exp sees a stray value
	var pol, clipped *ts.Tensor
	switch {
	case t.cfg.Algo == AlgoGRPO:
		pol, clipped = grpo(tp, logp, in.old, in.adv, t.cfg.ClipEps)
	case t.cfg.loss() == LossPPO:
		pol, clipped = ppoClip(tp, logp, in.old, in.adv, t.cfg.ClipEps)
	default:
		pol, clipped = cispo(tp, logp, in.old, in.adv, t.cfg.EpsHigh)
	}
	total := pol
	add := func(term *ts.Tensor, coef float64) {
		total = tp.T(total.Add(tp.T(term.MulScalar(tp.Scalar(coef), false)), false))
	}
	parts := []part{{&acc.policy, pol}, {&acc.clip, clipped}}
	if t.cfg.trainsValue() {
		v := valueLoss(tp, tp.T(sc.Values.Mul(in.mask, false)), in.ret)
		add(v, t.cfg.ValueCoef)
		parts = append(parts, part{&acc.value, v})
	}
	if refLP != nil {
		kl := klK3(tp, logp, tp.T(refLP.Mul(in.mask, false)))
		add(kl, t.cfg.KLCoef)
		parts = append(parts, part{&acc.kl, kl})
	}
	if t.cfg.EntropyCoef > 0 {
		add(sc.Entropy, -t.cfg.EntropyCoef)
		parts = append(parts, part{&acc.entropy, sc.Entropy})
	}
	loss := weighted(tp, total, in.weight)
	tensor.NoGrad(func() {
		staleness := klK3(tp, in.old, logp) // k3 of π_θ/π_b: how stale the data is
		parts = append(parts, part{&acc.approxKL, staleness}, part{&acc.total, total})
		acc.add(tp, parts, in.weight)
	})
	return loss
}

// weighted is Σ x⊙w, a scalar.
func weighted(tp *tensor.Scope, x, w *ts.Tensor) *ts.Tensor {
	return tp.T(tp.T(x.Mul(w, false)).Sum(x.DType(), false))
}
