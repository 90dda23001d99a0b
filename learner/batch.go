package learner

import (
	"fmt"
	"math"
	"sort"

	"tsd/algo"
	tsdv1 "tsd/proto/tsd/v1"
)

// sample is one completion ready to score: the learner's view of a tsdv1.Sample.
type sample struct {
	ids       []int32   // prompt + completion
	prompt    int       // prompt length P: completion token i is predicted at position P−1+i
	behaviour []float32 // log π_b of each completion token, as the actor recorded it
	reward    float64
	groupAdv  float64 // Â_i for group algorithms; unused otherwise
}

func (s sample) completion() int { return len(s.ids) - s.prompt }

// limits are what a rollout is checked against besides the config: the policy's vocabulary and
// context length.
type limits struct {
	vocab, maxLen int
}

// wantAlgo is the rollout algorithm each learner algorithm trains on.
func (c Config) wantAlgo() tsdv1.Algo { return algo.Wire(c.Algo) }

// checkRollout reports the first thing in r this learner cannot train on.
func (c Config) checkRollout(r *tsdv1.Rollout, lim limits) error {
	if r == nil {
		return fmt.Errorf("%w: nil rollout", ErrRollout)
	}
	if r.GetAlgo() != c.wantAlgo() {
		return fmt.Errorf("%w: algorithm %v, this learner (%s) trains %v", ErrRollout, r.GetAlgo(), c.Algo, c.wantAlgo())
	}
	n := len(r.GetSamples())
	switch {
	case !c.group() && n != 1:
		return fmt.Errorf("%w: %d samples, %s rollouts carry exactly one", ErrRollout, n, c.Algo)
	case c.group() && (n < 2 || (c.GroupSize > 0 && n != c.GroupSize)):
		return fmt.Errorf("%w: group of %d samples, want %s", ErrRollout, n, c.groupWant())
	case n > c.GlobalBatch:
		return fmt.Errorf("%w: %d samples exceed the global batch of %d", ErrRollout, n, c.GlobalBatch)
	}
	prompt := r.GetPromptIds()
	if len(prompt) == 0 {
		return fmt.Errorf("%w: empty prompt", ErrRollout)
	}
	if err := checkIDs("prompt", prompt, lim.vocab); err != nil {
		return err
	}
	for i, s := range r.GetSamples() {
		if err := checkSample(s, len(prompt), lim); err != nil {
			return fmt.Errorf("sample %d: %w", i, err)
		}
	}
	return nil
}

func (c Config) groupWant() string {
	if c.GroupSize > 0 {
		return fmt.Sprint(c.GroupSize)
	}
	return "at least 2"
}

func checkSample(s *tsdv1.Sample, promptLen int, lim limits) error {
	if s == nil {
		return fmt.Errorf("%w: nil sample", ErrRollout)
	}
	ids, lp, vals := s.GetCompletionIds(), s.GetLogprobs(), s.GetValues()
	switch {
	case len(ids) == 0:
		return fmt.Errorf("%w: empty completion", ErrRollout)
	case promptLen+len(ids) > lim.maxLen:
		return fmt.Errorf("%w: prompt %d + completion %d tokens exceed the model's %d positions", ErrRollout, promptLen, len(ids), lim.maxLen)
	case len(lp) != len(ids):
		return fmt.Errorf("%w: %d behaviour log-probs for %d completion tokens", ErrRollout, len(lp), len(ids))
	case len(vals) != 0 && len(vals) != len(ids):
		return fmt.Errorf("%w: %d values for %d completion tokens", ErrRollout, len(vals), len(ids))
	case !finite32(float64(s.GetReward())) || math.Abs(float64(s.GetReward())) > 1:
		return fmt.Errorf("%w: reward %v outside [-1, 1]", ErrRollout, s.GetReward())
	}
	if err := checkIDs("completion", ids, lim.vocab); err != nil {
		return err
	}
	for i, x := range lp {
		if !finite32(float64(x)) || x > 1e-4 { // a log-prob, with room for rounding
			return fmt.Errorf("%w: behaviour log-prob %v of token %d is not a finite log-probability", ErrRollout, x, i)
		}
	}
	for i, x := range vals {
		if !finite32(float64(x)) {
			return fmt.Errorf("%w: value %v of token %d", ErrRollout, x, i)
		}
	}
	return nil
}

func checkIDs(what string, ids []int32, vocab int) error {
	for i, id := range ids {
		if id < 0 || int(id) >= vocab {
			return fmt.Errorf("%w: %s token %d is id %d, outside the vocabulary [0, %d)", ErrRollout, what, i, id, vocab)
		}
	}
	return nil
}

func finite32(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// flatten checks rollouts and turns them into samples, computing group advantages, ordered by
// length so micro-batches carry little padding (each sample's loss weight does not depend on which
// micro-batch it lands in, so the order changes only summation order).
func (c Config) flatten(rollouts []*tsdv1.Rollout, lim limits) ([]sample, error) {
	if len(rollouts) == 0 {
		return nil, fmt.Errorf("%w: no rollouts", ErrRollout)
	}
	var out []sample
	for i, r := range rollouts {
		if err := c.checkRollout(r, lim); err != nil {
			return nil, fmt.Errorf("rollout %d (actor %q seq %d): %w", i, r.GetActorId(), r.GetSeq(), err)
		}
		out = append(out, c.samplesOf(r)...)
		if len(out) > c.GlobalBatch {
			return nil, fmt.Errorf("%w: %d rollouts carry more than the global batch of %d samples", ErrRollout, len(rollouts), c.GlobalBatch)
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return len(out[a].ids) < len(out[b].ids) })
	return out, nil
}

func (c Config) samplesOf(r *tsdv1.Rollout) []sample {
	prompt := r.GetPromptIds()
	rewards := make([]float64, len(r.GetSamples()))
	out := make([]sample, len(r.GetSamples()))
	for i, s := range r.GetSamples() {
		ids := make([]int32, 0, len(prompt)+len(s.GetCompletionIds()))
		ids = append(append(ids, prompt...), s.GetCompletionIds()...)
		rewards[i] = float64(s.GetReward())
		out[i] = sample{ids: ids, prompt: len(prompt), behaviour: s.GetLogprobs(), reward: rewards[i]}
	}
	if c.group() {
		for i, a := range groupAdvantages(rewards) {
			out[i].groupAdv = a
		}
	}
	return out
}
