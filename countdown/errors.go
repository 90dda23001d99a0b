package countdown

import "errors"

// Errors callers can test with errors.Is; every error this package returns wraps one of them.
var (
	// ErrProblem: a problem breaks the rules (no numbers, a negative number, a target below 1).
	ErrProblem = errors.New("countdown: invalid problem")
	// ErrData: a JSONL line is not a well-formed record.
	ErrData = errors.New("countdown: bad data")

	// ErrNoAnswer: the completion has no complete <answer>…</answer> pair (dense reward −1).
	ErrNoAnswer = errors.New("countdown: no <answer>…</answer> in completion")
	// ErrSyntax: the answer is not an expression of the grammar (dense reward −0.9).
	ErrSyntax = errors.New("countdown: answer does not parse")
	// ErrNumbers: the answer uses a number not left in the input multiset (dense reward −0.9).
	ErrNumbers = errors.New("countdown: answer uses numbers not in the input")
	// ErrDivByZero: the answer divides by zero, so it has no value (dense reward −0.9).
	ErrDivByZero = errors.New("countdown: answer divides by zero")

	// ErrUnsolvable: the exhaustive search proved that no expression reaches the target.
	ErrUnsolvable = errors.New("countdown: no expression reaches the target")
	// ErrTooLarge: the search would need more numbers or bigger values than it handles exactly.
	ErrTooLarge = errors.New("countdown: problem too large for the exact search")

	// ErrConfig: a generator setting is out of range.
	ErrConfig = errors.New("countdown: invalid generator config")
	// ErrExhausted: the generator drew many number sets and none had a target meeting the config.
	ErrExhausted = errors.New("countdown: generator found no fitting problem")
)
