package rolloutlog

import (
	"fmt"
	"maps"
	"os"
)

// TruncateBefore deletes the segments whose records all have indices below index: call it once
// a checkpoint covering them is durable. The segment being appended to is never deleted, so
// some records below index may stay (Read still returns them). The actors' highest seqs are
// written to the actors file first, so the dedup remembers actors whose records are gone.
func (l *Log) TruncateBefore(index uint64) error {
	l.truncMu.Lock()
	defer l.truncMu.Unlock()
	victims, st, err := l.truncationPlan(index)
	if err != nil || len(victims) == 0 {
		return err
	}
	if err := writeActors(l.dir, st, l.opts.NoSync); err != nil {
		return err
	}
	l.mu.Lock()
	if l.closed {
		// The actors file is written; the next Open finishes the deletion.
		l.mu.Unlock()
		return ErrClosed
	}
	l.segs = append([]*segment(nil), l.segs[len(victims):]...)
	l.mu.Unlock()

	// No reader can reach the victims any more: Read finds segments under the lock.
	for _, s := range victims {
		s.f.Close()
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("truncate: %w", err)
		}
	}
	return syncDir(l.dir, l.opts.NoSync)
}

// truncationPlan picks the segments TruncateBefore deletes and the actors file that must be
// written before they go.
func (l *Log) truncationPlan(index uint64) ([]*segment, actorsState, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case l.closed:
		return nil, actorsState{}, ErrClosed
	case index > l.next:
		return nil, actorsState{}, fmt.Errorf("%w: truncate before %d, beyond the next index %d",
			ErrInvalidArgument, index, l.next)
	}
	k := 0
	for k < len(l.segs)-1 && l.segs[k].first+l.segs[k].count() <= index {
		k++
	}
	if k == 0 {
		return nil, actorsState{}, nil
	}
	st := actorsState{FirstIndex: l.segs[k].first, Actors: maps.Clone(l.seqs)}
	return append([]*segment(nil), l.segs[:k]...), st, nil
}
