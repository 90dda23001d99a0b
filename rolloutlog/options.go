package rolloutlog

import (
	"fmt"
	"log/slog"
	"os"
)

// Limits on the sizes the log deals in.
const (
	// MaxRecordBytes bounds one encoded rollout. A rollout is a few hundred KiB at most (16
	// samples of 4k tokens); a length field above this on disk is damage, not data.
	MaxRecordBytes = 64 << 20
	// DefaultSegmentBytes keeps a segment small enough to scan quickly on open and to free disk
	// space soon after a checkpoint, and large enough that rotation (an extra fsync) is rare.
	DefaultSegmentBytes = 64 << 20
	minSegmentBytes     = 1 << 10
	maxSegmentBytes     = 1 << 30
)

// Options configures a Log. The zero value means the defaults.
type Options struct {
	// SegmentBytes: a segment is closed, and a new one started, once the next record would take
	// it past this size. A record bigger than this gets a segment of its own. Open scans whole
	// segments in memory, so it is capped at 1 GiB. Default DefaultSegmentBytes.
	SegmentBytes int64

	// NoSync skips every fsync. For tests and benchmarks only: with it, an operating-system
	// crash or power loss can lose acknowledged rollouts (a process crash cannot).
	NoSync bool

	// Logger receives the warning about a torn tail cut on Open. Default: text to stderr, since
	// a cut must never go unnoticed.
	Logger *slog.Logger
}

// withDefaults fills zero fields and checks the rest.
func (o Options) withDefaults() (Options, error) {
	if o.SegmentBytes == 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SegmentBytes < minSegmentBytes || o.SegmentBytes > maxSegmentBytes {
		return o, fmt.Errorf("%w: SegmentBytes %d outside [%d, %d]",
			ErrInvalidOptions, o.SegmentBytes, minSegmentBytes, maxSegmentBytes)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return o, nil
}
