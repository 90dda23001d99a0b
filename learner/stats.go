package learner

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// StepStats describes one optimizer step. Every per-token quantity is averaged like the loss: over
// each sequence's completion tokens, then over the sequences.
type StepStats struct {
	Step     int64   // optimizer steps taken, this one included
	Samples  int     // sequences trained on
	Tokens   int     // completion tokens trained on
	LR       float64 // learning rate this step used
	GradNorm float64 // global gradient norm before clipping
	Loss     Losses
	// ClipFraction is the share of tokens whose ratio π_θ/π_b left PPO's trust region, or whose
	// CISPO weight hit 1 + ε_high.
	ClipFraction float64
	// ApproxKL is the k3 estimate of KL between the behaviour policy and the current one: how
	// stale the rollouts are.
	ApproxKL      float64
	RewardMean    float64 // mean dense reward of the samples
	AdvantageMean float64
	ValueMean     float64 // mean V(s_t), when the value head is trained

	has terms // which optional terms were computed
}

// Losses are the terms of the loss, each before its coefficient; Total is the weighted sum.
type Losses struct {
	Policy, Value, KL, Entropy, Total float64
}

// terms records which optional loss terms a configuration computes.
type terms struct{ value, kl, entropy bool }

// Metrics returns the stats under stable names for logs and dashboards: step, samples, tokens, lr,
// grad/norm, loss/policy, loss/total, clip/fraction, policy/approx_kl, reward/mean, advantage/mean,
// and, when computed, loss/value and value/mean (value loss on), loss/kl (KL coefficient > 0),
// loss/entropy (entropy coefficient > 0).
func (s StepStats) Metrics() map[string]float64 {
	m := map[string]float64{
		"step":             float64(s.Step),
		"samples":          float64(s.Samples),
		"tokens":           float64(s.Tokens),
		"lr":               s.LR,
		"grad/norm":        s.GradNorm,
		"loss/policy":      s.Loss.Policy,
		"loss/total":       s.Loss.Total,
		"clip/fraction":    s.ClipFraction,
		"policy/approx_kl": s.ApproxKL,
		"reward/mean":      s.RewardMean,
		"advantage/mean":   s.AdvantageMean,
	}
	if s.has.value {
		m["loss/value"], m["value/mean"] = s.Loss.Value, s.ValueMean
	}
	if s.has.kl {
		m["loss/kl"] = s.Loss.KL
	}
	if s.has.entropy {
		m["loss/entropy"] = s.Loss.Entropy
	}
	return m
}

// tally accumulates a step's statistics over its micro-batches.
type tally struct {
	has                               terms
	policy, value, kl, entropy, total float64
	clip, approxKL, adv, valueMean    float64
}

func newTally(c Config) *tally {
	return &tally{has: terms{value: c.trainsValue(), kl: c.KLCoef > 0, entropy: c.EntropyCoef > 0}}
}

// part is a per-token quantity (B, T−1) and the tally field its weighted sum adds to.
type part struct {
	dst *float64
	x   *ts.Tensor
}

// add adds Σ x⊙w of each part to its field, reading all of them back in one host copy.
func (a *tally) add(tp *tensor.Scope, parts []part, w *ts.Tensor) {
	sums := make([]*ts.Tensor, len(parts))
	for i, p := range parts {
		sums[i] = weighted(tp, p.x, w)
	}
	vals := tensor.Float64s(tp.T(ts.Stack(sums, 0)))
	for i, p := range parts {
		*p.dst += vals[i]
	}
}

func (a *tally) stats(samples []sample, step int64, lr, norm float64) StepStats {
	s := StepStats{
		Step: step, Samples: len(samples), LR: lr, GradNorm: norm,
		Loss:         Losses{Policy: a.policy, Value: a.value, KL: a.kl, Entropy: a.entropy, Total: a.total},
		ClipFraction: a.clip, ApproxKL: a.approxKL, AdvantageMean: a.adv, ValueMean: a.valueMean,
		has: a.has,
	}
	for _, x := range samples {
		s.Tokens += x.completion()
		s.RewardMean += x.reward / float64(len(samples))
	}
	return s
}
