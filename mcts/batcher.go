package mcts

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// BatchConfig sets how a Batcher trades latency for batch size.
type BatchConfig struct {
	// MaxBatch is the most StepRequests in one call to the wrapped Stepper; the model sees
	// MaxBatch·Samples sequences. A larger Step call is split across batches.
	MaxBatch int

	// MaxWait is how long the first request of a batch waits for more before a smaller batch
	// goes. Zero sends whatever is queued at once.
	MaxWait time.Duration
}

// DefaultBatchConfig batches up to 192 requests, the source's 12 trees × 16 workers, so one
// round of every tree fits one model call; 2ms is long against the microseconds between
// trees' rounds and short against a model step.
func DefaultBatchConfig() BatchConfig {
	return BatchConfig{MaxBatch: 192, MaxWait: 2 * time.Millisecond}
}

// Validate reports a setting that cannot work, wrapped in ErrBadConfig.
func (c BatchConfig) Validate() error {
	switch {
	case c.MaxBatch < 1:
		return fmt.Errorf("%w: MaxBatch %d < 1", ErrBadConfig, c.MaxBatch)
	case c.MaxWait < 0:
		return fmt.Errorf("%w: MaxWait %v < 0", ErrBadConfig, c.MaxWait)
	}
	return nil
}

// Batcher is a Stepper that many searches share: it gathers their requests into batches of up
// to MaxBatch, waiting at most MaxWait, calls the wrapped Stepper once per batch, one batch at
// a time, and routes the answers back. Run drives it.
type Batcher struct {
	next    Stepper
	cfg     BatchConfig
	calls   chan *call
	stopped chan struct{} // closed when Run returns
	running atomic.Bool

	batches, requests atomic.Int64
}

var _ Stepper = (*Batcher)(nil)

// call is one Step call waiting for its answers. Only Run's goroutine touches it until done is
// closed; then only the caller reads res and err.
type call struct {
	ctx  context.Context
	reqs []StepRequest
	res  []StepResult
	err  error
	left int  // requests not answered yet
	over bool // answered or failed; later pieces are dropped
	done chan struct{}
}

// piece is the part reqs[lo:hi] of a call that goes into one batch.
type piece struct {
	c      *call
	lo, hi int
}

// NewBatcher wraps next. Nothing is batched until Run is started.
func NewBatcher(next Stepper, cfg BatchConfig) (*Batcher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Batcher{
		next:    next,
		cfg:     cfg,
		calls:   make(chan *call, min(4*cfg.MaxBatch, 1024)),
		stopped: make(chan struct{}),
	}, nil
}

// BatchStats counts a Batcher's work so far.
type BatchStats struct {
	Batches  int64 // calls to the wrapped Stepper
	Requests int64 // requests in them
}

// Stats may be called at any time.
func (b *Batcher) Stats() BatchStats {
	return BatchStats{Batches: b.batches.Load(), Requests: b.requests.Load()}
}

// Step queues reqs and waits for their answers, which may come from several batches.
func (b *Batcher) Step(ctx context.Context, reqs []StepRequest) ([]StepResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	// Copy reqs: a caller that gives up may reuse its slice while the batch still holds it.
	c := &call{ctx: ctx, reqs: slices.Clone(reqs), res: make([]StepResult, len(reqs)), left: len(reqs), done: make(chan struct{})}
	select {
	case b.calls <- c:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		return nil, ErrBatcherStopped
	}
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-b.stopped:
		select {
		case <-c.done: // answered just before Run returned
			return c.res, c.err
		default:
			return nil, ErrBatcherStopped
		}
	}
}

// Run batches until ctx ends, then fails what is still queued with ErrBatcherStopped and
// returns ctx's error. Call it once, in its own goroutine; the wrapped Stepper runs on it.
func (b *Batcher) Run(ctx context.Context) error {
	if !b.running.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: Run called twice", ErrBadConfig)
	}
	defer close(b.stopped)
	var (
		batch []piece
		reqs  []StepRequest
	)
	for {
		batch = b.gather(ctx, batch)
		if ctx.Err() != nil {
			b.failQueued(batch)
			return ctx.Err()
		}
		batch, reqs = b.run(ctx, batch, reqs[:0])
	}
}

// gather fills the batch: the pieces left over from the last one first, then queued calls,
// until MaxBatch requests or MaxWait after the first request. It returns early if ctx ends.
func (b *Batcher) gather(ctx context.Context, batch []piece) []piece {
	size := 0
	for _, p := range batch {
		size += p.hi - p.lo
	}
	if size == 0 {
		select {
		case c := <-b.calls:
			batch, size = b.add(batch, size, c)
		case <-ctx.Done():
			return batch
		}
	}
	var deadline <-chan time.Time
	if b.cfg.MaxWait > 0 {
		timer := time.NewTimer(b.cfg.MaxWait)
		defer timer.Stop()
		deadline = timer.C
	}
	for size < b.cfg.MaxBatch {
		if deadline == nil {
			select {
			case c := <-b.calls:
				batch, size = b.add(batch, size, c)
				continue
			default:
				return batch
			}
		}
		select {
		case c := <-b.calls:
			batch, size = b.add(batch, size, c)
		case <-deadline:
			return batch
		case <-ctx.Done():
			return batch
		}
	}
	return batch
}

// add appends c's requests to the batch, cut into pieces at multiples of MaxBatch: the first
// piece fills this batch, the rest stay at the end of the slice for the batches after it. Calls
// whose caller has gone are dropped.
func (b *Batcher) add(batch []piece, size int, c *call) ([]piece, int) {
	if err := c.ctx.Err(); err != nil {
		c.finish(err)
		return batch, size
	}
	for lo := 0; lo < len(c.reqs); {
		hi := min(len(c.reqs), lo+b.cfg.MaxBatch-size%b.cfg.MaxBatch)
		batch = append(batch, piece{c: c, lo: lo, hi: hi})
		size += hi - lo
		lo = hi
	}
	return batch, size
}

// run sends the first MaxBatch requests of the batch to the wrapped Stepper, routes the
// answers and returns the pieces that did not fit.
func (b *Batcher) run(ctx context.Context, batch []piece, reqs []StepRequest) ([]piece, []StepRequest) {
	n := 0
	for n < len(batch) && len(reqs)+batch[n].hi-batch[n].lo <= b.cfg.MaxBatch {
		p := batch[n]
		if err := p.c.ctx.Err(); err != nil && !p.c.over {
			p.c.finish(err) // the caller has gone: spare the model its requests
		}
		if !p.c.over {
			reqs = append(reqs, p.c.reqs[p.lo:p.hi]...)
		}
		n++
	}
	now, rest := batch[:n], batch[n:]
	if len(reqs) > 0 {
		res, err := b.next.Step(ctx, reqs)
		if err == nil && len(res) != len(reqs) {
			err = fmt.Errorf("%w: %d results for %d requests", ErrBadStepResult, len(res), len(reqs))
		}
		b.batches.Add(1)
		b.requests.Add(int64(len(reqs)))
		route(now, res, err)
	}
	left := copy(batch, rest) // reuse the slice; the routed pieces are done with
	return batch[:left], reqs
}

// route hands each piece its answers, or err, and finishes calls with nothing left.
func route(pieces []piece, res []StepResult, err error) {
	off := 0
	for _, p := range pieces {
		c := p.c
		switch {
		case c.over:
		case err != nil:
			c.finish(err)
		default:
			off += copy(c.res[p.lo:p.hi], res[off:])
			if c.left -= p.hi - p.lo; c.left == 0 {
				c.finish(nil)
			}
		}
	}
}

// finish ends c: answered if err is nil, failed otherwise.
func (c *call) finish(err error) {
	c.err, c.over = err, true
	close(c.done)
}

// failQueued fails the batch's pieces and every queued call with ErrBatcherStopped.
func (b *Batcher) failQueued(batch []piece) {
	for _, p := range batch {
		if !p.c.over {
			p.c.finish(ErrBatcherStopped)
		}
	}
	for {
		select {
		case c := <-b.calls:
			c.finish(ErrBatcherStopped)
		default:
			return
		}
	}
}
