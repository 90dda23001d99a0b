package learner

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"tsd/proto/tsd/v1"
	"tsd/rolloutlog"
)

// Admission errors: why a rollout is refused. Each maps to one gRPC code (see grpc.go) and one
// counter in Status.
var (
	// ErrStale: current version − rollout version > max_lag.
	ErrStale = errors.New("stale")
	// ErrFuture: a policy version the learner has not published.
	ErrFuture = errors.New("version from the future")
	// ErrMalformed: fails the trainer's checks (lengths, ids, non-finite numbers, reward range).
	ErrMalformed = errors.New("malformed")
	// ErrOversized: more completion tokens than allowed.
	ErrOversized = errors.New("oversized")
	// ErrWrongActor: the rollout names another actor than its stream's Hello.
	ErrWrongActor = errors.New("wrong actor")
	// ErrUnknownActor: the actor holds no lease at the coordinator.
	ErrUnknownActor = errors.New("unknown actor")
)

// Ingest admits rollouts into the write-ahead log. It is the learner's intake, separate from the
// training loop so that it can be tested and benchmarked on its own.
type Ingest struct {
	log       *rolloutlog.Log
	check     func(*tsdv1.Rollout) error // the trainer's validation
	maxLag    uint64
	maxTokens int
	version   atomic.Uint64 // current policy version

	mu       sync.Mutex
	rejected map[string]uint64 // reason → count
	lag      map[uint64]uint64 // lag → accepted count
	accepted uint64
	dups     uint64
}

// NewIngest admits into log. check validates a rollout for the trainer; maxTokens bounds a
// sample's completion length.
func NewIngest(log *rolloutlog.Log, check func(*tsdv1.Rollout) error, maxLag uint64, maxTokens int) *Ingest {
	return &Ingest{log: log, check: check, maxLag: maxLag, maxTokens: maxTokens,
		rejected: map[string]uint64{}, lag: map[uint64]uint64{}}
}

// SetVersion records the current policy version (staleness is measured against it).
func (in *Ingest) SetVersion(v uint64) { in.version.Store(v) }

// Version is the current policy version.
func (in *Ingest) Version() uint64 { return in.version.Load() }

// LastSeq is the highest durable seq of actor (what a reconnecting actor resumes after).
func (in *Ingest) LastSeq(actor string) uint64 { return in.log.LastSeq(actor) }

// Admit checks r for the stream of actor. A nil error means r may be submitted.
func (in *Ingest) Admit(actor string, r *tsdv1.Rollout) error {
	cur := in.version.Load()
	var err error
	switch {
	case r.GetActorId() != actor:
		err = fmt.Errorf("%w: rollout of %q on the stream of %q", ErrWrongActor, r.GetActorId(), actor)
	case r.GetSeq() == 0: // the log would refuse it too, but uncounted
		err = fmt.Errorf("%w: seq 0 (an actor numbers its rollouts from 1)", ErrMalformed)
	case r.GetPolicyVersion() > cur:
		err = fmt.Errorf("%w: version %d, the learner is at %d", ErrFuture, r.GetPolicyVersion(), cur)
	case cur-r.GetPolicyVersion() > in.maxLag:
		err = fmt.Errorf("%w: version %d is %d behind %d (max lag %d)", ErrStale, r.GetPolicyVersion(), cur-r.GetPolicyVersion(), cur, in.maxLag)
	default:
		err = in.checkSize(r)
		if err == nil {
			if cerr := in.check(r); cerr != nil {
				err = fmt.Errorf("%w: %v", ErrMalformed, cerr)
			}
		}
	}
	if err != nil {
		in.reject(err)
	}
	return err
}

func (in *Ingest) checkSize(r *tsdv1.Rollout) error {
	for i, s := range r.GetSamples() {
		if n := len(s.GetCompletionIds()); n > in.maxTokens {
			return fmt.Errorf("%w: sample %d has %d completion tokens (max %d)", ErrOversized, i, n, in.maxTokens)
		}
	}
	return nil
}

// Submit queues an admitted rollout for the log; the channel yields once it is durable (or was a
// duplicate). Rollouts of one actor must be submitted in the order they arrived.
func (in *Ingest) Submit(ctx context.Context, r *tsdv1.Rollout) (<-chan rolloutlog.Result, error) {
	return in.log.Submit(ctx, r)
}

// Durable records the outcome of a submitted rollout for the status counters.
func (in *Ingest) Durable(r *tsdv1.Rollout, e rolloutlog.Entry) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if e.Duplicate {
		in.dups++
		return
	}
	in.accepted++
	in.lag[in.version.Load()-min(r.GetPolicyVersion(), in.version.Load())]++
}

// reject counts a refusal by its reason (the sentinel's text).
func (in *Ingest) reject(err error) {
	reason := "other"
	for _, s := range []error{ErrStale, ErrFuture, ErrMalformed, ErrOversized, ErrWrongActor, ErrUnknownActor} {
		if errors.Is(err, s) {
			reason = s.Error()
			break
		}
	}
	switch {
	case errors.Is(err, rolloutlog.ErrTooLarge):
		reason = ErrOversized.Error()
	case errors.Is(err, rolloutlog.ErrInvalidRollout):
		reason = ErrMalformed.Error()
	}
	in.mu.Lock()
	in.rejected[reason]++
	in.mu.Unlock()
}

// Counts is a snapshot of the admission counters.
type Counts struct {
	Accepted, Duplicates uint64
	Rejected             map[string]uint64
	Staleness            map[uint64]uint64
}

// Counts returns the admission counters.
func (in *Ingest) Counts() Counts {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := Counts{Accepted: in.accepted, Duplicates: in.dups, Rejected: map[string]uint64{}, Staleness: map[uint64]uint64{}}
	for k, v := range in.rejected {
		c.Rejected[k] = v
	}
	for k, v := range in.lag {
		c.Staleness[k] = v
	}
	return c
}
