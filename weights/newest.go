package weights

import (
	"context"
	"errors"
	"fmt"
	"time"

	tsdv1 "tsd/proto/tsd/v1"
)

// Target is a published version as the coordinator records it (Size: its bytes, the most a
// manifest may claim; 0 for no limit but FetchOptions.MaxBytes), and the sources that may hold
// it (peers first, the learner last).
type Target struct {
	Version uint64
	SHA256  string
	Size    int64
	Sources []Source
}

// FetchNewest fetches the newest published version, which newest names, into store and returns
// its manifest. A version no source could provide (the learner pruned it while it was fetched,
// every peer failed) is not the end: newest is asked again and its answer fetched, after a pause
// that grows from RetryBackoff to a few seconds; onRetry, if set, is told each time. A source that
// sent corrupt bytes for a version is not asked for that version again. Other errors (a full
// disk, a conflicting version in the store) and the end of ctx are returned.
func FetchNewest(ctx context.Context, newest func(context.Context) (Target, error), store *Store, opts FetchOptions, onRetry func(Target, error)) (*tsdv1.WeightManifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	corrupt := map[uint64]map[string]bool{} // version → sources that sent it corrupt
	onError := opts.OnError
	backoff := opts.RetryBackoff
	for {
		t, err := newest(ctx)
		if err != nil {
			return nil, err
		}
		bad := corrupt[t.Version]
		if bad == nil {
			bad = map[string]bool{}
			corrupt[t.Version] = bad
		}
		var sources []Source
		for _, s := range t.Sources {
			if !bad[s.Name] {
				sources = append(sources, s)
			}
		}
		opts.OnError = func(src string, err error) {
			if errors.Is(err, ErrCorruptChunk) || errors.Is(err, ErrDigest) {
				bad[src] = true
			}
			if onError != nil {
				onError(src, err)
			}
		}
		if len(sources) == 0 {
			err = fmt.Errorf("%w: version %d: every source sent corrupt bytes", ErrSources, t.Version)
		} else {
			o := opts
			if t.Size > 0 {
				o.MaxBytes = t.Size
			}
			var m *tsdv1.WeightManifest
			if m, err = Fetch(ctx, sources, t.Version, t.SHA256, store, o); err == nil {
				return m, nil
			}
		}
		if ctx.Err() != nil || !errors.Is(err, ErrSources) {
			return nil, err
		}
		if onRetry != nil {
			onRetry(t, err)
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}
