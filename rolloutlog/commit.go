package rolloutlog

import (
	"context"
	"fmt"
	"sync"

	tsdv1 "tsd/proto/tsd/v1"
)

// maxQueuedBytes bounds the rollouts waiting for the disk; Submit blocks beyond it, which is
// the backpressure the learner passes on to actors as fewer credits.
const maxQueuedBytes = 32 << 20

// maxKeptBufferBytes is the largest batch buffer kept for reuse between commits.
const maxKeptBufferBytes = 4 << 20

// Entry is the outcome of an Append.
type Entry struct {
	// Index is the record's place in the log; 0 for a duplicate (the original's index is not
	// kept once its segment is truncated, and the caller needs only Duplicate).
	Index uint64
	// Duplicate: the actor's highest seq was already at or above this one, so nothing was
	// written. The original is durable by the time the result arrives.
	Duplicate bool
}

// Result is what a submitted rollout's channel delivers once it is durable or has failed.
type Result struct {
	Entry Entry
	Err   error
}

// appendReq is one rollout waiting for the committer.
type appendReq struct {
	actor string
	seq   uint64
	frame []byte
	done  chan Result // buffered, so the committer never waits for a submitter
}

// committer is the single goroutine that writes: it takes every rollout queued at that moment,
// writes them with one write and one fsync (group commit), then publishes and answers them all.
type committer struct {
	mu      sync.Mutex
	queue   []*appendReq  // in submission order
	queued  int           // bytes of frames in queue
	space   chan struct{} // closed and replaced when the queue is taken, for blocked submitters
	stopped bool          // Close was called: nothing more is queued
	limit   int           // maxQueuedBytes; tests lower it

	wake    chan struct{} // capacity 1: the queue is not empty
	closing chan struct{}
	done    chan struct{} // the committer goroutine has exited
	active  *segment      // the segment written to; owned by the committer goroutine
	buf     []byte        // the batch being written, reused
}

func newCommitter(active *segment) *committer {
	return &committer{
		space:   make(chan struct{}),
		limit:   maxQueuedBytes,
		wake:    make(chan struct{}, 1),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		active:  active,
	}
}

// enqueue adds req behind everything queued before it, waiting while the queue is full.
func (c *committer) enqueue(ctx context.Context, req *appendReq) error {
	for {
		c.mu.Lock()
		if c.stopped {
			c.mu.Unlock()
			return ErrClosed
		}
		if c.queued == 0 || c.queued+len(req.frame) <= c.limit {
			c.queue = append(c.queue, req)
			c.queued += len(req.frame)
			c.mu.Unlock()
			select {
			case c.wake <- struct{}{}:
			default: // already signalled
			}
			return nil
		}
		space := c.space
		c.mu.Unlock()
		select {
		case <-space:
		case <-c.closing:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// take empties the queue.
func (c *committer) take() []*appendReq {
	c.mu.Lock()
	defer c.mu.Unlock()
	batch := c.queue
	c.queue, c.queued = nil, 0
	close(c.space)
	c.space = make(chan struct{})
	return batch
}

// stop refuses further rollouts; false if it was already stopped.
func (c *committer) stop() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return false
	}
	c.stopped = true
	close(c.closing)
	return true
}

// Append writes r durably and returns its index, or reports it as a duplicate (see Entry). It
// returns once r (or its original) is on disk, sharing the write and fsync with every rollout
// queued at the same moment. If ctx ends first, the outcome is unknown: r may still be
// written, and a retry will then be a duplicate.
func (l *Log) Append(ctx context.Context, r *tsdv1.Rollout) (Entry, error) {
	done, err := l.Submit(ctx, r)
	if err != nil {
		return Entry{}, err
	}
	select {
	case res := <-done:
		return res.Entry, res.Err
	case <-ctx.Done():
		return Entry{}, ctx.Err()
	}
}

// Submit queues r and returns at once (unless the queue is full) with a channel that delivers
// its Result once it is durable. Rollouts are written in the order they were submitted, so a
// stream handler can submit each rollout as it arrives and ack in order as the results come,
// keeping many of one actor's rollouts in one group commit. r is encoded before Submit
// returns; the caller may reuse it.
func (l *Log) Submit(ctx context.Context, r *tsdv1.Rollout) (<-chan Result, error) {
	if err := validateRollout(r); err != nil {
		return nil, err
	}
	done := make(chan Result, 1)
	if dup, err := l.precheck(r.GetActorId(), r.GetSeq()); err != nil {
		return nil, err
	} else if dup {
		l.stats.duplicates.Add(1)
		done <- Result{Entry: Entry{Duplicate: true}}
		return done, nil
	}
	frame, err := encodeFrame(r)
	if err != nil {
		return nil, err
	}
	req := &appendReq{actor: r.GetActorId(), seq: r.GetSeq(), frame: frame, done: done}
	if err := l.commit.enqueue(ctx, req); err != nil {
		return nil, err
	}
	return done, nil
}

// precheck answers without queueing when the log cannot take r or r is a duplicate of
// something already durable.
func (l *Log) precheck(actor string, seq uint64) (duplicate bool, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	switch {
	case l.closed:
		return false, ErrClosed
	case l.failed != nil:
		return false, l.failed
	}
	return seq <= l.seqs[actor], nil
}

// runCommitter is the committer goroutine. On Close it writes what is queued, then exits.
func (l *Log) runCommitter() {
	c := l.commit
	defer close(c.done)
	for {
		select {
		case <-c.wake:
		case <-c.closing:
		}
		if batch := c.take(); len(batch) > 0 {
			l.commitBatch(batch)
			continue
		}
		select {
		case <-c.closing: // stopped, and the queue was empty after it stopped
			return
		default:
		}
	}
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
		answer(batch, Result{Err: l.failed})
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
		answer(batch, Result{Err: l.failed})
		return
	}
	l.publish(fresh, rotated)
	l.stats.appended.Add(uint64(len(fresh)))
	l.stats.duplicates.Add(uint64(len(dups)))
	if len(fresh) > 0 {
		l.stats.commits.Add(1)
	}
	for _, p := range fresh {
		p.req.done <- Result{Entry: Entry{Index: p.index}}
	}
	answer(dups, Result{Entry: Entry{Duplicate: true}})
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
	c := l.commit
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

// flush writes the buffered records to the active segment and fsyncs it. With nothing
// buffered there is nothing to do: the previous flush left the segment durable.
func (l *Log) flush() error {
	c := l.commit
	if len(c.buf) == 0 {
		return nil
	}
	if _, err := c.active.f.Write(c.buf); err != nil {
		return fmt.Errorf("write %s: %w", c.active.path, err)
	}
	c.buf = c.buf[:0]
	if cap(c.buf) > maxKeptBufferBytes { // a burst of big rollouts need not pin its buffer
		c.buf = nil
	}
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
func answer(reqs []*appendReq, res Result) {
	for _, req := range reqs {
		req.done <- res
	}
}
