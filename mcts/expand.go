package mcts

import (
	"fmt"
	"math"
	"strings"
)

// child is one new node of an expansion before it joins the tree.
type child struct {
	step     step
	rep      int     // the continuation that stands for the child: the likeliest of its copies
	prior    float64 // Σ softmax weights of its copies
	value    float32
	eos      bool
	terminal bool
}

// children turns the answer for node id into its children, in descending prior order, or says
// why the answer breaks the Stepper contract. It changes nothing in the tree.
//
// Priors are the softmax over the K samples' summed log-probs (not length-normalised). Copies of
// one step (same text, same EOS) merge into one child whose prior is the sum of the copies'
// weights: the mass the source, which kept copies as separate edges, gave that step in total, so
// sampling a step twice still makes it likelier to be explored. The likeliest copy's tokens
// stand for the child.
func (t *Tree) children(id int32, res StepResult) ([]child, error) {
	conts := res.Continuations
	if len(conts) != t.cfg.Samples {
		return nil, fmt.Errorf("%w: %d continuations, want %d", ErrBadStepResult, len(conts), t.cfg.Samples)
	}
	parent := &t.steps[id]
	limit := t.stepCap(parent.newTokens)
	sums := t.scratchSums(len(conts))
	for i := range conts {
		sum, err := checkContinuation(&conts[i], limit)
		if err != nil {
			return nil, fmt.Errorf("continuation %d: %w", i, err)
		}
		sums[i] = sum
	}
	softmax(sums)
	kids := mergeCopies(conts, sums, t.kids[:0])
	t.kids = kids
	for i := range kids {
		if err := t.fillChild(id, &kids[i], &conts[kids[i].rep]); err != nil {
			return nil, err
		}
	}
	return kids, nil
}

// scratchSums returns a reusable slice of n floats.
func (t *Tree) scratchSums(n int) []float64 {
	if cap(t.sums) < n {
		t.sums = make([]float64, n)
	}
	return t.sums[:n]
}

// checkContinuation enforces the Continuation contract and returns the summed log-prob.
func checkContinuation(c *Continuation, maxTokens int) (float64, error) {
	n := len(c.Tokens)
	switch {
	case n == 0:
		return 0, fmt.Errorf("%w: no tokens", ErrBadStepResult)
	case n > maxTokens:
		return 0, fmt.Errorf("%w: %d tokens, at most %d allowed", ErrBadStepResult, n, maxTokens)
	case len(c.LogProbs) != n || len(c.Values) != n:
		return 0, fmt.Errorf("%w: %d tokens, %d log-probs, %d values", ErrBadStepResult, n, len(c.LogProbs), len(c.Values))
	}
	sum := 0.0
	for i, lp := range c.LogProbs {
		if !(lp <= 0) || math.IsInf(float64(lp), -1) {
			return 0, fmt.Errorf("%w: log-prob %v of token %d not finite and <= 0", ErrBadStepResult, lp, i)
		}
		sum += float64(lp)
	}
	for i, v := range c.Values {
		if !(v >= -1 && v <= 1) {
			return 0, fmt.Errorf("%w: value %v after token %d outside [-1, 1]", ErrBadStepResult, v, i)
		}
	}
	return sum, nil
}

// softmax replaces x with softmax(x), shifted by the maximum so exp cannot overflow.
func softmax(x []float64) {
	top := math.Inf(-1)
	for _, v := range x {
		top = max(top, v)
	}
	z := 0.0
	for i, v := range x {
		x[i] = math.Exp(v - top)
		z += x[i]
	}
	for i := range x {
		x[i] /= z
	}
}

// mergeCopies groups the continuations by (text, EOS) into out and sorts the groups by prior,
// largest first; ties keep the order the steps were first sampled in. weights are the
// continuations' softmax weights; a group's representative is its likeliest copy.
func mergeCopies(conts []Continuation, weights []float64, out []child) []child {
	for i := range conts {
		c := &conts[i]
		j := 0
		for j < len(out) && (out[j].eos != c.EOS || conts[out[j].rep].Text != c.Text) {
			j++
		}
		if j == len(out) {
			out = append(out, child{rep: i, eos: c.EOS})
		} else if weights[i] > weights[out[j].rep] {
			out[j].rep = i
		}
		out[j].prior += weights[i]
	}
	for i := 1; i < len(out); i++ { // insertion sort: K is small and the order must be stable
		for j := i; j > 0 && out[j].prior > out[j-1].prior; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out
}

// fillChild completes k from its representative continuation c: the step, whether the node is
// terminal (EOS, or the token budget spent), and its value (the value head at the last token,
// or the reward of the completion if terminal).
func (t *Tree) fillChild(parent int32, k *child, c *Continuation) error {
	k.step = step{
		Continuation: c,
		newTokens:    t.steps[parent].newTokens + int32(len(c.Tokens)),
		depth:        t.steps[parent].depth + 1,
	}
	k.terminal = c.EOS || int(k.step.newTokens) >= t.cfg.MaxNewTokens
	if !k.terminal {
		k.value = c.Values[len(c.Values)-1]
		return nil
	}
	tokens, text := t.completion(parent, &k.step)
	r, err := t.score(tokens, text)
	if err != nil {
		return err
	}
	k.step.reward, k.value = r, float32(r)
	return nil
}

// score calls the RewardFunc and checks its answer.
func (t *Tree) score(tokens []int32, text string) (float64, error) {
	r := t.reward(tokens, text)
	if !(r >= -1 && r <= 1) {
		return 0, fmt.Errorf("%w: %v for %q", ErrBadReward, r, text)
	}
	return r, nil
}

// completion returns the generated tokens and text from the root through node id, followed by
// last. The tokens are scratch space, valid until the next call (RewardFunc must not keep them).
func (t *Tree) completion(id int32, last *step) ([]int32, string) {
	path := t.path[:0]
	for ; id > 0; id = t.nodes[id].parent {
		path = append(path, &t.steps[id])
	}
	t.path = path
	tokens := t.tokens[:0]
	size := len(last.Text)
	for _, s := range path {
		size += len(s.Text)
	}
	var text strings.Builder
	text.Grow(size)
	for i := len(path) - 1; i >= 0; i-- {
		tokens = append(tokens, path[i].Tokens...)
		text.WriteString(path[i].Text)
	}
	tokens = append(tokens, last.Tokens...)
	text.WriteString(last.Text)
	t.tokens = tokens
	return tokens, text.String()
}
