package optim

import "errors"

// Errors of this package. Callers test them with errors.Is.
var (
	// ErrConfig is a Config that Validate rejects.
	ErrConfig = errors.New("optimizer config")
	// ErrNonFinite is a gradient norm that is NaN or infinite; the step must be skipped, since
	// applying it would poison every weight.
	ErrNonFinite = errors.New("non-finite gradient")
	// ErrState is an optimizer state file that does not match the parameters it is loaded into.
	ErrState = errors.New("optimizer state")
)
