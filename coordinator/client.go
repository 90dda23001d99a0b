package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// Retry timing of the Client. An attempt is cut after attemptTimeout so that a node that stopped
// answering (not refusing: a killed process refuses at once) does not hold the call; it must
// exceed the nodes' ApplyTimeout, or healthy slow commits would be retried.
const (
	attemptTimeout = 10 * time.Second
	backoffMin     = 50 * time.Millisecond
	backoffMax     = time.Second
)

// Client talks to a coordinator cluster through any of its nodes. A call that fails with
// Unavailable (no leader yet, node down, leadership moving) is retried on the next address, with
// growing pauses after each round, until the context ends; every other refusal returns at once.
// Returned refusals match this package's sentinels with errors.Is (ErrFenced, ErrLeaseHeld, ...)
// and keep their gRPC status for status.Code.
//
// Retried writes are safe: publishing an already committed version again succeeds, acquiring
// again only fences the caller's own previous epoch, heartbeats and registrations are idempotent.
type Client struct {
	addrs []string
	conns []*grpc.ClientConn
	stubs []tsdv1.CoordinatorClient
	next  atomic.Int64 // index of the address to try first: the last one that answered
	log   *slog.Logger
}

// Dial returns a Client for the coordinators at addrs (gRPC host:port), configured by cfg.
func Dial(addrs []string, cfg rpc.Config, log *slog.Logger) (*Client, error) {
	return NewClient(addrs, func(a string) (*grpc.ClientConn, error) { return rpc.Dial(a, cfg) }, log)
}

// NewClient returns a Client that connects with dial (tests pass a bufconn dialer).
func NewClient(addrs []string, dial func(addr string) (*grpc.ClientConn, error), log *slog.Logger) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no coordinator addresses", ErrInvalid)
	}
	c := &Client{addrs: addrs, log: log}
	for _, a := range addrs {
		cc, err := dial(a)
		if err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("coordinator: dial %s: %w", a, err)
		}
		c.conns = append(c.conns, cc)
		c.stubs = append(c.stubs, tsdv1.NewCoordinatorClient(cc))
	}
	return c, nil
}

// Close closes the connections.
func (c *Client) Close() error {
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// call runs f against one node after another until it succeeds, fails for good, or ctx ends.
func call[Resp any](ctx context.Context, c *Client, f func(context.Context, tsdv1.CoordinatorClient) (Resp, error)) (Resp, error) {
	start := int(c.next.Load())
	backoff := backoffMin
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % len(c.stubs)
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := f(actx, c.stubs[i])
		cancel()
		if err == nil {
			c.next.Store(int64(i))
			return resp, nil
		}
		if ctx.Err() != nil || !retryable(err) {
			return resp, fromStatus(err)
		}
		c.log.Debug("coordinator call failed; retrying", "addr", c.addrs[i], "err", err)
		if (attempt+1)%len(c.stubs) == 0 {
			if sleep(ctx, backoff) != nil {
				return resp, fromStatus(err)
			}
			backoff = min(2*backoff, backoffMax)
		}
	}
}

// retryable: the call may succeed elsewhere or later (Unavailable covers a node without a
// leader, a dead node and a forward that lost the leader; DeadlineExceeded here is one attempt's
// timeout, since the caller's context is still live).
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Aborted:
		return true
	}
	return errors.Is(err, io.EOF)
}

// sleep waits about d (±25% so that many clients do not retry in step) or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	d = time.Duration(float64(d) * (0.75 + 0.5*rand.Float64()))
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RemoteError is a coordinator's refusal: errors.Is matches its sentinel, status.Code its code.
type RemoteError struct {
	st       *status.Status
	sentinel error
}

func (e *RemoteError) Error() string {
	return fmt.Sprintf("coordinator: %s: %s", e.st.Code(), e.st.Message())
}

func (e *RemoteError) Unwrap() error { return e.sentinel }

// GRPCStatus lets status.Code and status.FromError see the original status.
func (e *RemoteError) GRPCStatus() *status.Status { return e.st }

// fromStatus turns a status carrying the coordinator's ErrorInfo into a RemoteError.
func fromStatus(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok && info.GetDomain() == errorDomain {
			if s := sentinelOf(info.GetReason()); s != nil {
				return &RemoteError{st: st, sentinel: s}
			}
		}
	}
	return err
}

// AcquireLearnerLease asks for the learner lease; the response's lease epoch goes into every
// PublishVersion and renewal.
func (c *Client) AcquireLearnerLease(ctx context.Context, req *tsdv1.AcquireLearnerLeaseRequest) (*tsdv1.AcquireLearnerLeaseResponse, error) {
	return call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.AcquireLearnerLeaseResponse, error) {
		return s.AcquireLearnerLease(ctx, req)
	})
}

// RenewLearnerLease extends the lease of epoch for ttl (0 = the coordinator's default).
func (c *Client) RenewLearnerLease(ctx context.Context, learnerID string, epoch uint64, ttl time.Duration) (*tsdv1.LearnerLease, error) {
	req := &tsdv1.RenewLearnerLeaseRequest{LearnerId: learnerID, Epoch: epoch, TtlMs: ttl.Milliseconds()}
	resp, err := call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.RenewLearnerLeaseResponse, error) {
		return s.RenewLearnerLease(ctx, req)
	})
	return resp.GetLease(), err
}

// PublishVersion records v (v.learner_epoch = the lease's epoch, v.version = latest+1) and returns
// the raft index that committed it.
func (c *Client) PublishVersion(ctx context.Context, v *tsdv1.PolicyVersion) (uint64, error) {
	resp, err := call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.PublishVersionResponse, error) {
		return s.PublishVersion(ctx, &tsdv1.PublishVersionRequest{Version: v})
	})
	return resp.GetCommitIndex(), err
}

// GetVersion returns a published version (0 = latest) as the answering node knows it; a follower
// can be a replication delay behind, so a version just seen elsewhere may be NotFound there.
func (c *Client) GetVersion(ctx context.Context, version uint64) (*tsdv1.PolicyVersion, error) {
	return call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.PolicyVersion, error) {
		return s.GetVersion(ctx, &tsdv1.GetVersionRequest{Version: version})
	})
}

// RegisterActor starts an actor's lease for ttl (0 = the coordinator's default).
func (c *Client) RegisterActor(ctx context.Context, actorID, addr string, ttl time.Duration) (*tsdv1.RegisterActorResponse, error) {
	req := &tsdv1.RegisterActorRequest{ActorId: actorID, Addr: addr, TtlMs: ttl.Milliseconds()}
	return call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.RegisterActorResponse, error) {
		return s.RegisterActor(ctx, req)
	})
}

// Heartbeat renews an actor's lease and reports the version it holds verified. ErrUnknownActor
// means the lease expired: register again.
func (c *Client) Heartbeat(ctx context.Context, actorID string, heldVersion uint64, ttl time.Duration) (*tsdv1.HeartbeatResponse, error) {
	req := &tsdv1.HeartbeatRequest{ActorId: actorID, HeldVersion: heldVersion, TtlMs: ttl.Milliseconds()}
	return call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.HeartbeatResponse, error) {
		return s.Heartbeat(ctx, req)
	})
}

// DeregisterActor ends an actor's lease.
func (c *Client) DeregisterActor(ctx context.Context, actorID string) error {
	_, err := call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.DeregisterActorResponse, error) {
		return s.DeregisterActor(ctx, &tsdv1.DeregisterActorRequest{ActorId: actorID})
	})
	return err
}

// WeightSource returns where actorID should fetch version (0 = latest): peers first, the learner
// last.
func (c *Client) WeightSource(ctx context.Context, actorID string, version uint64) ([]string, error) {
	resp, err := call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.WeightSourceResponse, error) {
		return s.WeightSource(ctx, &tsdv1.WeightSourceRequest{ActorId: actorID, Version: version})
	})
	return resp.GetAddrs(), err
}

// Join asks the cluster to add a node (as a non-voter) or to promote it; see Node.Join.
func (c *Client) Join(ctx context.Context, r JoinRequest) (JoinResult, error) {
	req := &tsdv1.JoinRequest{NodeId: r.ID, RaftAddr: r.RaftAddr, GrpcAddr: r.GRPCAddr, Replace: r.Replace, AppliedIndex: r.AppliedIndex}
	resp, err := call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.JoinResponse, error) {
		return s.Join(ctx, req)
	})
	return JoinResult{Voter: resp.GetVoter(), CatchUpIndex: resp.GetCatchUpIndex()}, err
}

// ClusterState returns the answering node's view of the cluster.
func (c *Client) ClusterState(ctx context.Context) (*tsdv1.ClusterStateResponse, error) {
	return call(ctx, c, func(ctx context.Context, s tsdv1.CoordinatorClient) (*tsdv1.ClusterStateResponse, error) {
		return s.ClusterState(ctx, &tsdv1.ClusterStateRequest{})
	})
}

// WatchVersions calls fn with every version after after, in order and each once, then with each
// new one as it commits, until ctx ends (it returns ctx.Err()) or fn fails (it returns that
// error). When a stream breaks it reconnects, to another node if need be, and resumes after the
// last version delivered.
func (c *Client) WatchVersions(ctx context.Context, after uint64, fn func(*tsdv1.PolicyVersion) error) error {
	i := int(c.next.Load())
	backoff := backoffMin
	for {
		delivered, err := c.watchOnce(ctx, i, &after, fn)
		var fe fnError
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &fe):
			return fe.err
		case !retryable(err):
			return fromStatus(err)
		}
		if delivered {
			backoff = backoffMin
		}
		c.log.Debug("version watch broke; resuming", "addr", c.addrs[i], "after", after, "err", err)
		i = (i + 1) % len(c.stubs)
		if sleep(ctx, backoff) != nil {
			return ctx.Err()
		}
		backoff = min(2*backoff, backoffMax)
	}
}

// fnError carries the watcher callback's own error out of watchOnce.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

func (c *Client) watchOnce(ctx context.Context, i int, after *uint64, fn func(*tsdv1.PolicyVersion) error) (bool, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.stubs[i].WatchVersions(ctx, &tsdv1.WatchVersionsRequest{AfterVersion: *after})
	if err != nil {
		return false, err
	}
	delivered := false
	for {
		v, err := stream.Recv()
		if err != nil {
			return delivered, err
		}
		if v.GetVersion() <= *after {
			continue
		}
		c.next.Store(int64(i))
		if err := fn(v); err != nil {
			return delivered, fnError{err}
		}
		*after, delivered = v.GetVersion(), true
	}
}
