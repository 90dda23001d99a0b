package rolloutlog

import (
	"context"
	"fmt"

	tsdv1 "tsd/proto/tsd/v1"
)

// maxBatchBytes bounds one group commit, so that a burst of large rollouts does not hold every
// appender behind one enormous write.
const maxBatchBytes = 8 << 20

// Entry is the outcome of an Append.
type Entry struct {
	// Index is the record's place in the log; 0 for a duplicate (the original's index is not
	// kept once its segment is truncated, and the caller needs only Duplicate).
	Index uint64
	// Duplicate: the actor's highest seq was already at or above this one, so nothing was
	// written. The original is durable by the time Append returns.
	Duplicate bool
}

// appendReq is one Append waiting for the committer.
type appendReq struct {
	actor string
	seq   uint64
	frame []byte
	done  chan appendResult // buffered, so the committer never waits for an appender
}

type appendResult struct {
	entry Entry
	err   error
}

// committer is the single goroutine that writes: it takes every Append waiting at that moment,
// writes them with one write and one fsync (group commit), then publishes and answers them all.
type committer struct {
	reqs    chan *appendReq // unbuffered: a waiting Append is one blocked in send
	closing chan struct{}
	done    chan struct{}
	stopped bool     // closing is closed; guarded by Log.mu
	active  *segment // the segment written to; owned by the committer goroutine
	buf     []byte   // the batch being written, reused
}

func newCommitter(active *segment) committer {
	return committer{
		reqs:    make(chan *appendReq),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		active:  active,
	}
}

func (c *committer) stopping() bool { return c.stopped }

func (c *committer) stop() {
	c.stopped = true
	close(c.closing)
}

// Append writes r durably and returns its index, or reports it as a duplicate (see Entry). It
// returns once r (or its original) is on disk, together with every Append waiting at the same
// moment. If ctx ends first, the outcome is unknown: r may still be written, and a retry will
// then be a duplicate.
func (l *Log) Append(ctx context.Context, r *tsdv1.Rollout) (Entry, error) {
	if err := validateRollout(r); err != nil {
		return Entry{}, err
	}
	if dup, err := l.precheck(r.GetActorId(), r.GetSeq()); dup || err != nil {
		if dup {
			l.stats.duplicates.Add(1)
		}
		return Entry{Duplicate: dup}, err
	}
	frame, err := encodeFrame(r)
	if err != nil {
		return Entry{}, err
	}
	req := &appendReq{actor: r.GetActorId(), seq: r.GetSeq(), frame: frame, done: make(chan appendResult, 1)}
	select {
	case l.commit.reqs <- req:
	case <-l.commit.closing:
		return Entry{}, ErrClosed
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
	select {
	case res := <-req.done:
		return res.entry, res.err
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// precheck answers without queueing when the log cannot take r or r is a duplicate of
// something already durable.
func (l *Log) precheck(actor string, seq uint64) (duplicate bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case l.closed || l.commit.stopped:
		return false, ErrClosed
	case l.failed != nil:
		return false, l.failed
	}
	return seq <= l.seqs[actor], nil
}

// runCommitter is the committer goroutine.
func (l *Log) runCommitter() {
	defer close(l.commit.done)
	for {
		select {
		case <-l.commit.closing:
			return
		case req := <-l.commit.reqs:
			l.commitBatch(l.gather(req))
		}
	}
}

// gather collects every Append blocked in send right now, up to maxBatchBytes.
func (l *Log) gather(first *appendReq) []*appendReq {
	batch, size := []*appendReq{first}, len(first.frame)
	for size < maxBatchBytes {
		select {
		case req := <-l.commit.reqs:
			batch, size = append(batch, req), size+len(req.frame)
		default:
			return batch
		}
	}
	return batch
}

// placed is a record of the batch with where it goes.
type placed struct {
	req   *appendReq
	index uint64
	seg   *segment
	off   int64
}

// commitBatch writes, fsyncs, publishes and answers one batch.
func (l *Log) commitBatch(batch []*appendReq) {
	if l.failed != nil { // only this goroutine sets it
		answer(batch, appendResult{err: l.failed})
		return
	}
	fresh, dups := l.dedup(batch)
	rotated, err := l.write(fresh)
	if err != nil {
		for _, s := range rotated {
			s.f.Close()
		}
		l.mu.Lock()
		l.failed = fmt.Errorf("%w: %w", ErrFailed, err)
		close(l.notify) // wake Waiters, who will see the failure
		l.notify = make(chan struct{})
		l.mu.Unlock()
		answer(batch, appendResult{err: l.failed})
		return
	}
	l.publish(fresh, rotated)
	l.stats.appended.Add(uint64(len(fresh)))
	l.stats.duplicates.Add(uint64(len(dups)))
	if len(fresh) > 0 {
		l.stats.commits.Add(1)
	}
	for _, p := range fresh {
		p.req.done <- appendResult{entry: Entry{Index: p.index}}
	}
	answer(dups, appendResult{entry: Entry{Duplicate: true}})
}

// dedup splits a batch into new records, in order, and duplicates: a seq at or below the actor's
// highest, counting records earlier in the batch (a retry racing its original).
func (l *Log) dedup(batch []*appendReq) (fresh []placed, dups []*appendReq) {
	pending := map[string]uint64{}
	for _, req := range batch {
		if req.seq <= max(l.seqs[req.actor], pending[req.actor]) { // the committer alone writes l.seqs
			dups = append(dups, req)
			continue
		}
		pending[req.actor] = req.seq
		fresh = append(fresh, placed{req: req, index: l.next + uint64(len(fresh))}) // so is l.next
	}
	return fresh, dups
}

// write places the records in segments, starting new ones as they fill, and makes them durable.
// It returns the segments it started.
func (l *Log) write(fresh []placed) (rotated []*segment, err error) {
	if len(fresh) == 0 {
		return nil, nil
	}
	c := &l.commit
	c.buf = c.buf[:0]
	off := c.active.size // the file holds exactly the published records
	for i := range fresh {
		n := int64(len(fresh[i].req.frame))
		if off > 0 && off+n > l.opts.SegmentBytes {
			if err := l.flush(); err != nil {
				return rotated, err
			}
			seg, err := createSegment(l.dir, fresh[i].index, l.opts.NoSync)
			if err != nil {
				return rotated, err
			}
			rotated = append(rotated, seg)
			c.active, off = seg, 0
		}
		fresh[i].seg, fresh[i].off = c.active, off
		c.buf = append(c.buf, fresh[i].req.frame...)
		off += n
	}
	return rotated, l.flush()
}

// flush writes the buffered records to the active segment and fsyncs it.
func (l *Log) flush() error {
	c := &l.commit
	if _, err := c.active.f.Write(c.buf); err != nil {
		return fmt.Errorf("write %s: %w", c.active.path, err)
	}
	c.buf = c.buf[:0]
	if l.opts.NoSync {
		return nil
	}
	if err := c.active.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", c.active.path, err)
	}
	return nil
}

// publish makes durable records visible to readers and to the dedup, and wakes Waiters.
func (l *Log) publish(fresh []placed, rotated []*segment) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.segs = append(l.segs, rotated...)
	for _, p := range fresh {
		p.seg.offsets = append(p.seg.offsets, p.off)
		p.seg.size = p.off + int64(len(p.req.frame))
		l.seqs[p.req.actor] = p.req.seq
	}
	l.next += uint64(len(fresh))
	close(l.notify)
	l.notify = make(chan struct{})
}

// answer gives every request in reqs the same result.
func answer(reqs []*appendReq, res appendResult) {
	for _, req := range reqs {
		req.done <- res
	}
}
