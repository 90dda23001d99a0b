package model

import "errors"

// Errors of this package. Callers test them with errors.Is.
var (
	// ErrConfig is a config.json this package cannot run.
	ErrConfig = errors.New("model config")
	// ErrCheckpoint is a weights file that is missing, truncated, or disagrees with the config.
	ErrCheckpoint = errors.New("checkpoint")
	// ErrInput is a request with bad ids, shapes or options.
	ErrInput = errors.New("model input")
)
