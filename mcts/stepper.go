package mcts

import "context"

// Stepper samples one reasoning step for many prefixes at once. The actor's model adapter
// implements it on the GPU, Batcher implements it by coalescing many callers' requests, and
// mctstest.Model implements it from a script for tests.
//
// Contract: Step returns exactly one StepResult per request, in request order, each holding
// exactly req.Samples continuations; it returns an error rather than a partial answer; it is
// safe for concurrent use. It does not use reqs after it returns, and the answers it returns
// belong to the caller, who may keep them (the tree keeps them as its nodes' steps) but never
// modifies them.
type Stepper interface {
	Step(ctx context.Context, reqs []StepRequest) ([]StepResult, error)
}

// StepRequest asks for Samples continuations of Prefix, each one reasoning step long.
type StepRequest struct {
	// Prefix is the whole token sequence of the node being expanded: the root prompt followed by
	// every step on the path to it. Requests of one tree all start with the same prompt, and a
	// node's prefix extends its parent's, which is what lets an adapter reuse KV caches.
	Prefix []int32

	// PromptLen says how much of Prefix is the root prompt, the part every request of a tree
	// shares: an adapter that keeps the prompt's KV cache only runs Prefix[PromptLen:] again.
	PromptLen int

	// Samples continuations are wanted, drawn independently at Temperature.
	Samples     int
	Temperature float64

	// A continuation stops after Stop (included), at EOS, or after MaxTokens new tokens.
	MaxTokens int
	Stop      string

	// Seed makes the sampling reproducible; the tree derives it from Config.Seed and the node.
	Seed uint64
}

// StepResult holds the continuations sampled for one StepRequest.
type StepResult struct {
	Continuations []Continuation
}

// Continuation is one sampled reasoning step.
type Continuation struct {
	// Tokens are the new tokens, at least one and at most the request's MaxTokens.
	Tokens []int32

	// LogProbs[i] is the policy's log-probability of Tokens[i] at temperature 1 (<= 0). The
	// step's prior comes from their sum; the learner uses them as behaviour log-probs.
	LogProbs []float32

	// Values[i] is the value head, in [-1, 1], after Tokens[i]; the last one is the new node's
	// leaf value.
	Values []float32

	// EOS is true when the step ended with the end-of-sequence token, which makes the node
	// terminal.
	EOS bool

	// Text is the decoded step. Continuations of one request with the same Text and EOS are the
	// same step and merge into one child.
	Text string
}

// RewardFunc scores a whole completion (every generated token after the prompt, and its text,
// the concatenation of the steps' texts) with the dense reward, in [-1, 1]. The tree calls it
// for terminal nodes and for a chosen path that ends before a terminal. It must not retain
// tokens.
type RewardFunc func(tokens []int32, text string) float64
