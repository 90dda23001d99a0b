package rolloutstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"

	"tsd/proto/tsd/v1"
)

// Sender streams rollouts to the learner under its credits and keeps every rollout until the
// learner acknowledges it. When the stream breaks (the learner restarted, the network failed) it
// reconnects, learns from the Hello reply which rollouts were made durable, and sends the rest
// again, so none is lost and the learner's dedup drops none that it has not seen.
type Sender struct {
	actorID string
	dial    func(ctx context.Context) (tsdv1.LearnerClient, error)
	log     *slog.Logger
	queue   chan *tsdv1.Rollout

	mu       sync.Mutex
	nextSeq  uint64           // 0 until the first Hello says where to continue
	inflight []*tsdv1.Rollout // sent or assigned a seq, not yet acked, in seq order
	credits  uint32
	counts   SendCounts
	version  uint64 // learner's version, from its acks
}

// SendCounts are the sender's counters.
type SendCounts struct {
	Sent, Acked, Duplicates, Rejected, Reconnects uint64
	LastSeq                                       uint64
}

// NewSender makes a sender for actorID; dial opens a client to the current learner. queueLen
// rollouts may wait to be sent before Send blocks (backpressure on the producers).
func NewSender(actorID string, dial func(ctx context.Context) (tsdv1.LearnerClient, error), queueLen int, log *slog.Logger) *Sender {
	return &Sender{actorID: actorID, dial: dial, log: log, queue: make(chan *tsdv1.Rollout, queueLen)}
}

// Send queues r (its Seq is assigned here); it blocks while the queue is full.
func (s *Sender) Send(ctx context.Context, r *tsdv1.Rollout) error {
	r.ActorId = s.actorID
	select {
	case s.queue <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Counts returns the counters.
func (s *Sender) Counts() (SendCounts, uint32, int, uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counts, s.credits, len(s.inflight) + len(s.queue), s.version
}

// Run keeps a stream to the learner open until ctx ends, reconnecting with backoff.
func (s *Sender) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		start := time.Now()
		err := s.session(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Since(start) > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		s.log.Warn("rollout stream ended; reconnecting", "err", err, "in", backoff)
		s.mu.Lock()
		s.counts.Reconnects++
		s.mu.Unlock()
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// session runs one stream: Hello, resend what was not acked, then send under credits.
func (s *Sender) session(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	client, err := s.dial(ctx)
	if err != nil {
		return err
	}
	stream, err := client.StreamRollouts(ctx)
	if err != nil {
		return err
	}
	if err := s.hello(stream); err != nil {
		return err
	}
	wake := make(chan struct{}, 1)
	recvErr := make(chan error, 1)
	go func() { recvErr <- s.receive(stream, wake) }()
	if err := s.resend(ctx, stream, wake, recvErr); err != nil {
		return err
	}
	for {
		if s.takeCredit() {
			select {
			case r := <-s.queue:
				if err := s.sendNew(stream, r); err != nil {
					return err
				}
				continue
			case err := <-recvErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		select {
		case <-wake:
		case err := <-recvErr:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (s *Sender) hello(stream grpc.BidiStreamingClient[tsdv1.RolloutUpload, tsdv1.RolloutAck]) error {
	s.mu.Lock()
	last := s.nextSeq
	if last > 0 {
		last--
	}
	s.mu.Unlock()
	if err := stream.Send(&tsdv1.RolloutUpload{Msg: &tsdv1.RolloutUpload_Hello{Hello: &tsdv1.Hello{ActorId: s.actorID, LastAckedSeq: last}}}); err != nil {
		return err
	}
	reply, err := stream.Recv()
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	durable := reply.GetLastAckedSeq()
	if s.nextSeq == 0 {
		s.nextSeq = durable + 1 // a fresh process continues after what the learner holds
	}
	kept := s.inflight[:0]
	for _, r := range s.inflight {
		if r.GetSeq() > durable {
			kept = append(kept, r)
		} else {
			s.counts.Acked++
		}
	}
	s.inflight, s.credits, s.version = kept, reply.GetCredits(), reply.GetLearnerVersion()
	return nil
}

// resend sends again every rollout the learner has not made durable. The learner may grant fewer
// credits than there is to resend; then it waits for acks, or for the stream to fail.
func (s *Sender) resend(ctx context.Context, stream grpc.BidiStreamingClient[tsdv1.RolloutUpload, tsdv1.RolloutAck],
	wake <-chan struct{}, recvErr <-chan error) error {
	s.mu.Lock()
	pending := append([]*tsdv1.Rollout(nil), s.inflight...)
	s.mu.Unlock()
	for _, r := range pending {
		for !s.takeCredit() {
			select { // credits come back as acks arrive
			case <-wake:
			case err := <-recvErr:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := stream.Send(&tsdv1.RolloutUpload{Msg: &tsdv1.RolloutUpload_Rollout{Rollout: r}}); err != nil {
			return err
		}
	}
	return nil
}

// takeCredit spends a credit if there is one.
func (s *Sender) takeCredit() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.credits == 0 {
		return false
	}
	s.credits--
	return true
}

func (s *Sender) sendNew(stream grpc.BidiStreamingClient[tsdv1.RolloutUpload, tsdv1.RolloutAck], r *tsdv1.Rollout) error {
	s.mu.Lock()
	r.Seq = s.nextSeq
	s.nextSeq++
	s.inflight = append(s.inflight, r)
	s.counts.Sent++
	s.counts.LastSeq = r.Seq
	s.mu.Unlock()
	return stream.Send(&tsdv1.RolloutUpload{Msg: &tsdv1.RolloutUpload_Rollout{Rollout: r}})
}

// errRetry is an ack saying the learner could not take a rollout now: reconnect and resend.
var errRetry = errors.New("learner asked to retry")

// receive applies acks until the stream ends.
func (s *Sender) receive(stream grpc.BidiStreamingClient[tsdv1.RolloutUpload, tsdv1.RolloutAck], wake chan<- struct{}) error {
	for {
		a, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("learner closed the stream")
		}
		if err != nil {
			return err
		}
		if err := s.apply(a); err != nil {
			return err
		}
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

func (s *Sender) apply(a *tsdv1.RolloutAck) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.version = a.GetLearnerVersion()
	if codes.Code(a.GetCode()) == codes.Unavailable {
		return fmt.Errorf("%w: seq %d: %s", errRetry, a.GetSeq(), a.GetReason())
	}
	if a.GetSeq() == 0 { // a credit grant: the learner's buffer has room again
		s.credits += a.GetCredits()
		return nil
	}
	i := 0
	for i < len(s.inflight) && s.inflight[i].GetSeq() != a.GetSeq() {
		i++
	}
	if i == len(s.inflight) {
		return fmt.Errorf("ack for seq %d, which is not in flight", a.GetSeq())
	}
	s.inflight = append(s.inflight[:i], s.inflight[i+1:]...)
	s.credits += a.GetCredits()
	switch a.GetResult() {
	case tsdv1.RolloutAck_ACCEPTED:
		s.counts.Acked++
	case tsdv1.RolloutAck_DUPLICATE:
		s.counts.Acked++
		s.counts.Duplicates++
	default:
		s.counts.Rejected++
		s.log.Warn("rollout rejected", "seq", a.GetSeq(), "result", a.GetResult(), "code", codes.Code(a.GetCode()), "reason", a.GetReason())
	}
	return nil
}
