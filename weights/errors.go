package weights

import "errors"

// Errors returned by this package, wrapped with the version, file or source they concern; test
// with errors.Is.
var (
	// ErrNotFound means the store (or every source) lacks the version.
	ErrNotFound = errors.New("weights: version not found")
	// ErrCheckpoint means a directory is not a flat checkpoint: it holds a subdirectory, a
	// special file, a symlink leading out of it, or a file with an unusable name.
	ErrCheckpoint = errors.New("weights: not a checkpoint directory")
	// ErrManifest means a manifest is malformed: a bad or duplicate file name, files out of name
	// order, a negative size, a file digest that is not 64 lowercase hex digits or a file named
	// by sha256 (an earlier tsd), a digest that does not match its files, or limits exceeded.
	ErrManifest = errors.New("weights: bad manifest")
	// ErrDigest means bytes or a manifest disagree with the digest they were promised to have.
	ErrDigest = errors.New("weights: digest mismatch")
	// ErrCorruptChunk means one chunk's data disagrees with its own CRC-32C; the fetch resumes
	// at that chunk, from the next source if there is one.
	ErrCorruptChunk = errors.New("weights: corrupt chunk")
	// ErrProtocol means a source sent something the protocol does not allow: no manifest first,
	// a chunk out of order, past the end of its file, or empty, or a stream that ended early.
	ErrProtocol = errors.New("weights: protocol violation")
	// ErrStalled means a source sent nothing for FetchOptions.StallTimeout (SwitchAfter for a
	// source that is not the last).
	ErrStalled = errors.New("weights: source stalled")
	// ErrRequest means a bad Fetch request: a resume file not in the manifest, an offset
	// outside it, or a chunk size outside [MinChunkBytes, MaxChunkBytes].
	ErrRequest = errors.New("weights: bad request")
	// ErrConflict means a store already holds the version with a different digest.
	ErrConflict = errors.New("weights: version already stored with another digest")
	// ErrSources means every source failed; the error also wraps each source's last error.
	ErrSources = errors.New("weights: no source could provide the version")
	// ErrArgument means an unusable argument: FetchOptions out of range, a wantSHA that is not a
	// sha256, no sources, a negative count for Keep.
	ErrArgument = errors.New("weights: bad argument")
)
