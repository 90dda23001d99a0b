package rolloutlog

import "errors"

// Errors callers can test with errors.Is; every error this package returns wraps one of them,
// a context error, or a file-system error (*fs.PathError) from opening or truncating.
var (
	// ErrInvalidOptions: an Options field is out of range.
	ErrInvalidOptions = errors.New("rolloutlog: invalid options")
	// ErrInvalidRollout: a nil rollout, an empty actor id or a seq of 0.
	ErrInvalidRollout = errors.New("rolloutlog: invalid rollout")
	// ErrTooLarge: the encoded rollout is bigger than MaxRecordBytes.
	ErrTooLarge = errors.New("rolloutlog: record too large")
	// ErrInvalidArgument: a Read or TruncateBefore argument makes no sense (max < 1, an index
	// beyond Next).
	ErrInvalidArgument = errors.New("rolloutlog: invalid argument")
	// ErrTruncated: the records asked for were deleted by TruncateBefore.
	ErrTruncated = errors.New("rolloutlog: records truncated")
	// ErrCorrupt: the directory holds damage that is not a torn tail; the message names the file
	// and offset. Nothing was changed on disk.
	ErrCorrupt = errors.New("rolloutlog: corrupt log")
	// ErrLocked: another Log, in this process or another, has the directory open.
	ErrLocked = errors.New("rolloutlog: directory in use")
	// ErrFailed: a write or fsync failed, so what is on disk is unknown; the log accepts no more
	// appends. Close and reopen it to recover.
	ErrFailed = errors.New("rolloutlog: log failed")
	// ErrClosed: the log was closed.
	ErrClosed = errors.New("rolloutlog: log closed")
)
