package learner

import "errors"

// Errors of this package. Callers test them with errors.Is.
var (
	// ErrConfig is a Config that Validate rejects, or models that do not fit it.
	ErrConfig = errors.New("learner config")
	// ErrRollout is a rollout the learner cannot train on (wrong algorithm, mismatched lengths,
	// non-finite numbers, too many samples). The service should have rejected it first.
	ErrRollout = errors.New("bad rollout")
	// ErrCheckpoint is a checkpoint directory that is missing, incomplete, or was written with a
	// different configuration.
	ErrCheckpoint = errors.New("learner checkpoint")
)
