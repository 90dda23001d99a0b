package mcts

import "errors"

// Errors returned by this package, always wrapped with context; test them with errors.Is.
var (
	// ErrBadConfig: a Config or BatchConfig setting cannot work.
	ErrBadConfig = errors.New("mcts: bad config")

	// ErrBadPrompt: the root prompt is empty.
	ErrBadPrompt = errors.New("mcts: bad prompt")

	// ErrBadStepResult: a Stepper answered with the wrong number of results or continuations,
	// or with a continuation that breaks the Continuation contract (no tokens, too many tokens,
	// mismatched lengths, a non-finite or positive log-prob, a value outside [-1, 1]).
	ErrBadStepResult = errors.New("mcts: bad step result")

	// ErrBadReward: the RewardFunc returned a value outside [-1, 1] or NaN.
	ErrBadReward = errors.New("mcts: reward outside [-1, 1]")

	// ErrNotPending: Expand was given a node that is not waiting for an expansion.
	ErrNotPending = errors.New("mcts: node is not awaiting expansion")

	// ErrBadExport: an exported tree breaks a structural or visit invariant.
	ErrBadExport = errors.New("mcts: bad tree export")

	// ErrBatcherStopped: the Batcher's Run returned before the request was answered.
	ErrBatcherStopped = errors.New("mcts: batcher stopped")
)
