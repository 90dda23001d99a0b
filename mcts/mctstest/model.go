// Package mctstest holds scripted stand-ins for the language model, so the search can be tested
// (and benchmarked) without one.
package mctstest

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"tsd/mcts"
)

// ErrScript: the script cannot answer a request.
var ErrScript = errors.New("mctstest: script cannot answer")

// Model is a scripted mcts.Stepper. Steps lists every step a prefix may take; Step answers each
// request from that list, deterministically.
type Model struct {
	// Steps lists the steps a prefix may take, in a fixed order. Their summed log-probs set how
	// likely each is to be sampled; they need not be normalised.
	Steps func(prefix []int32) ([]mcts.Continuation, error)

	// Decode gives the text of a step cut short by the request's MaxTokens. Only needed when
	// steps can be longer than that.
	Decode func(tokens []int32) string

	// Sample makes Step draw each request's continuations with replacement, with probability
	// proportional to exp(Σ log-probs / Temperature), from a generator seeded by the request.
	// Otherwise Step returns the steps in order, starting over when there are fewer steps than
	// Samples (which makes copies).
	Sample bool

	mu      sync.Mutex
	batches []int
}

var _ mcts.Stepper = (*Model)(nil)

// Batches returns the size of every Step call so far, in order.
func (m *Model) Batches() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.batches...)
}

// Step answers every request or fails as a whole.
func (m *Model) Step(ctx context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	m.batches = append(m.batches, len(reqs))
	m.mu.Unlock()
	out := make([]mcts.StepResult, len(reqs))
	for i, req := range reqs {
		res, err := m.answer(req)
		if err != nil {
			return nil, fmt.Errorf("request %d: %w", i, err)
		}
		out[i] = res
	}
	return out, nil
}

// answer picks the request's continuations and cuts them to its MaxTokens.
func (m *Model) answer(req mcts.StepRequest) (mcts.StepResult, error) {
	steps, err := m.Steps(req.Prefix)
	if err != nil {
		return mcts.StepResult{}, err
	}
	if len(steps) == 0 {
		return mcts.StepResult{}, fmt.Errorf("%w: no steps after %d tokens", ErrScript, len(req.Prefix))
	}
	pick := m.picker(req, steps)
	res := mcts.StepResult{Continuations: make([]mcts.Continuation, req.Samples)}
	for i := range res.Continuations {
		c := steps[pick(i)]
		if len(c.Tokens) > req.MaxTokens {
			if m.Decode == nil {
				return mcts.StepResult{}, fmt.Errorf("%w: step of %d tokens over MaxTokens %d and no Decode", ErrScript, len(c.Tokens), req.MaxTokens)
			}
			n := req.MaxTokens
			c = mcts.Continuation{Tokens: c.Tokens[:n], LogProbs: c.LogProbs[:n], Values: c.Values[:n], Text: m.Decode(c.Tokens[:n])}
		}
		res.Continuations[i] = c
	}
	return res, nil
}

// picker returns which step the i-th continuation of req is.
func (m *Model) picker(req mcts.StepRequest, steps []mcts.Continuation) func(i int) int {
	if !m.Sample {
		return func(i int) int { return i % len(steps) }
	}
	cum := make([]float64, len(steps))
	top := math.Inf(-1)
	for i := range steps {
		cum[i] = sum(steps[i].LogProbs) / req.Temperature
		top = math.Max(top, cum[i])
	}
	total := 0.0
	for i := range cum {
		total += math.Exp(cum[i] - top)
		cum[i] = total
	}
	rng := rand.New(rand.NewPCG(req.Seed, 0x6d637473))
	return func(int) int {
		u := rng.Float64() * total
		for i, c := range cum {
			if u < c {
				return i
			}
		}
		return len(cum) - 1
	}
}

func sum(x []float32) float64 {
	s := 0.0
	for _, v := range x {
		s += float64(v)
	}
	return s
}
