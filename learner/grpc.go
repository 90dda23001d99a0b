package learner

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"tsd/proto/tsd/v1"
	"tsd/rolloutlog"
)

// Directory says whether an actor holds a lease (the coordinator knows it).
type Directory interface {
	Known(ctx context.Context, actorID string) (bool, error)
}

// GRPC is the Learner service's thin gRPC adapter over a Service.
type GRPC struct {
	tsdv1.UnimplementedLearnerServer
	svc     *Service
	actors  Directory
	credits uint32
}

// NewGRPC serves svc; actors decides who may stream (nil admits anyone).
func NewGRPC(svc *Service, actors Directory) *GRPC {
	return &GRPC{svc: svc, actors: actors, credits: svc.cfg.Credits}
}

var _ tsdv1.LearnerServer = (*GRPC)(nil)

// Status reports the learner's state.
func (g *GRPC) Status(context.Context, *tsdv1.StatusRequest) (*tsdv1.StatusResponse, error) {
	return g.svc.Status(), nil
}

// ack is one reply owed on a stream, in arrival order: an admission error, or a pending write.
type ack struct {
	r    *tsdv1.Rollout
	err  error
	done <-chan rolloutlog.Result
}

// StreamRollouts: Hello first, then rollouts under credits; acks in arrival order once durable.
func (g *GRPC) StreamRollouts(stream grpc.BidiStreamingServer[tsdv1.RolloutUpload, tsdv1.RolloutAck]) error {
	ctx := stream.Context()
	actor, err := g.hello(ctx, stream)
	if err != nil {
		return err
	}
	g.svc.status.connected(actor)
	defer g.svc.status.disconnected(actor)
	acks := make(chan ack, g.credits)
	sendErr := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); sendErr <- g.sendAcks(stream, acks) }()
	recvErr := g.receive(ctx, stream, actor, acks)
	close(acks)
	wg.Wait()
	if err := <-sendErr; err != nil {
		return err
	}
	return recvErr
}

// hello reads the opening message and answers with the actor's durable position and credits.
func (g *GRPC) hello(ctx context.Context, stream grpc.BidiStreamingServer[tsdv1.RolloutUpload, tsdv1.RolloutAck]) (string, error) {
	first, err := stream.Recv()
	if err != nil {
		return "", err
	}
	h := first.GetHello()
	if h == nil || h.GetActorId() == "" {
		return "", status.Error(codes.InvalidArgument, "the first message must be a Hello with an actor id")
	}
	if g.actors != nil {
		known, err := g.actors.Known(ctx, h.GetActorId())
		if err != nil {
			return "", status.Errorf(codes.Unavailable, "checking actor %q with the coordinator: %v", h.GetActorId(), err)
		}
		if !known {
			g.svc.ingest.reject(ErrUnknownActor)
			return "", status.Errorf(codes.FailedPrecondition, "%v: %q holds no lease; register with the coordinator first", ErrUnknownActor, h.GetActorId())
		}
	}
	return h.GetActorId(), stream.Send(&tsdv1.RolloutAck{
		LastAckedSeq: g.svc.ingest.LastSeq(h.GetActorId()), Credits: g.credits, LearnerVersion: g.svc.ingest.Version()})
}

// receive admits each rollout and queues its ack; the queue's capacity is the credit limit, so a
// client that ignores credits is slowed down, not served ahead.
func (g *GRPC) receive(ctx context.Context, stream grpc.BidiStreamingServer[tsdv1.RolloutUpload, tsdv1.RolloutAck], actor string, acks chan<- ack) error {
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		r := msg.GetRollout()
		if r == nil {
			return status.Error(codes.InvalidArgument, "only one Hello per stream; then rollouts")
		}
		a := ack{r: r, err: g.svc.ingest.Admit(actor, r)}
		if a.err == nil {
			a.done, a.err = g.svc.ingest.Submit(ctx, r)
			if codeOf(a.err) == codes.InvalidArgument { // the log refused it: a bad rollout, counted too
				g.svc.ingest.reject(a.err)
			}
		}
		select {
		case acks <- a:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// sendAcks answers each queued rollout in order. Each ack returns its credit while the learner's
// buffer of untrained rollouts has room; otherwise the credit is owed and granted later (an ack
// with seq 0), so actors pause instead of piling up rollouts that go stale in the buffer.
func (g *GRPC) sendAcks(stream grpc.BidiStreamingServer[tsdv1.RolloutUpload, tsdv1.RolloutAck], acks <-chan ack) error {
	var failed error
	var owed uint32
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	send := func(m *tsdv1.RolloutAck) {
		if failed == nil {
			failed = stream.Send(m)
		}
	}
	for {
		select {
		case a, ok := <-acks:
			if !ok {
				return failed
			}
			if failed != nil {
				continue // drain, so receive never blocks on a dead stream
			}
			reply := g.reply(a)
			if g.svc.hasRoom() {
				reply.Credits = 1
			} else {
				owed++
			}
			send(reply)
		case <-tick.C:
			if owed > 0 && g.svc.hasRoom() {
				send(&tsdv1.RolloutAck{Credits: owed, LearnerVersion: g.svc.ingest.Version()})
				owed = 0
			}
		}
	}
}

// reply waits for a rollout's outcome and builds its ack (without credits).
func (g *GRPC) reply(a ack) *tsdv1.RolloutAck {
	reply := &tsdv1.RolloutAck{Seq: a.r.GetSeq()}
	err := a.err
	if err == nil {
		res := <-a.done
		if err = res.Err; err == nil {
			reply.Result = tsdv1.RolloutAck_ACCEPTED
			if res.Entry.Duplicate {
				reply.Result = tsdv1.RolloutAck_DUPLICATE
			}
			g.svc.ingest.Durable(a.r, res.Entry)
			g.svc.status.acked(a.r)
		}
	}
	if err != nil {
		reply.Result, reply.Code, reply.Reason = rejection(err), int32(codeOf(err)), err.Error()
	}
	reply.LearnerVersion = g.svc.ingest.Version()
	return reply
}

// rejection is the ack result for a refused rollout.
func rejection(err error) tsdv1.RolloutAck_Result {
	if errors.Is(err, ErrStale) {
		return tsdv1.RolloutAck_STALE
	}
	return tsdv1.RolloutAck_INVALID
}

// codeOf maps the learner's errors to gRPC codes, in one place: InvalidArgument for a rollout that
// is wrong in itself, FailedPrecondition for one the learner's state refuses (stale, unknown
// actor), Unavailable when the write-ahead log cannot take it now (retry).
func codeOf(err error) codes.Code {
	switch {
	case err == nil:
		return codes.OK
	case errors.Is(err, ErrStale), errors.Is(err, ErrUnknownActor):
		return codes.FailedPrecondition
	case errors.Is(err, ErrMalformed), errors.Is(err, ErrFuture), errors.Is(err, ErrOversized),
		errors.Is(err, ErrWrongActor), errors.Is(err, rolloutlog.ErrInvalidRollout), errors.Is(err, rolloutlog.ErrTooLarge):
		return codes.InvalidArgument
	case errors.Is(err, rolloutlog.ErrFailed), errors.Is(err, rolloutlog.ErrClosed), errors.Is(err, context.Canceled):
		return codes.Unavailable
	}
	if s, ok := status.FromError(err); ok {
		return s.Code()
	}
	return codes.Internal
}

// CoordinatorDirectory answers Known from the coordinator's actor leases, cached briefly.
type CoordinatorDirectory struct {
	State func(ctx context.Context) (*tsdv1.ClusterStateResponse, error)
	TTL   time.Duration

	mu    sync.Mutex
	at    time.Time
	known map[string]bool
}

// Known reports whether actorID holds a lease, refreshing the cache when it is old or the actor
// is missing from it (a new actor registers just before it streams).
func (d *CoordinatorDirectory) Known(ctx context.Context, actorID string) (bool, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.known[actorID] && time.Since(d.at) < d.TTL {
		return true, nil
	}
	st, err := d.State(ctx)
	if err != nil {
		return false, err
	}
	d.known, d.at = map[string]bool{}, time.Now()
	for _, a := range st.GetActors() {
		d.known[a.GetActorId()] = true
	}
	return d.known[actorID], nil
}
