package coordinator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sync"
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

// How loudly a Client reports failures it retries: every retry at Debug; a WARN with the cause
// once calls have failed for warnAfter (an election takes about a second or two and is not worth
// one), then at most every warnEvery while the outage lasts; an INFO when a call succeeds again.
const (
	warnAfter = 3 * time.Second
	warnEvery = 30 * time.Second
)

// Client talks to a coordinator cluster through any of its nodes. A call that fails with
// Unavailable (no leader yet, node down, leadership moving) is retried on the next address, with
// growing pauses after each round, until the context ends; every other refusal returns at once.
// Returned refusals match this package's sentinels with errors.Is (ErrFenced, ErrLeaseHeld, ...)
// and keep their gRPC status for status.Code.
//
// Retried writes are safe: publishing an already committed version again succeeds, acquiring
// again only fences the caller's own previous epoch, heartbeats and registrations are idempotent.
//
// Failures are not silent: see warnAfter. A misconfiguration that retrying cannot heal (a wrong
// or missing token, a TLS flag missing or wrong) ends the call with an error naming the flag (an
// *rpc.Diagnosis, matching rpc.ErrConfig) if no call of this Client has succeeded yet, so a role
// started with bad flags exits; once calls succeeded, such failures are retried with warnings,
// since someone may be fixing the servers' side. A wrong token always ends the call.
type Client struct {
	addrs []string
	conns []*grpc.ClientConn
	stubs []tsdv1.CoordinatorClient
	next  atomic.Int64 // index of the address to try first: the last one that answered
	log   *slog.Logger
	cfg   rpc.Config
	probe bool // Diagnose may handshake with the address (real network, not bufconn)

	everOK atomic.Bool // some call has succeeded
	alarm  alarm
}

// Dial returns a Client for the coordinators at addrs (gRPC host:port), configured by cfg.
func Dial(addrs []string, cfg rpc.Config, log *slog.Logger) (*Client, error) {
	c, err := NewClient(addrs, func(a string) (*grpc.ClientConn, error) { return rpc.Dial(a, cfg) }, log)
	if err != nil {
		return nil, err
	}
	c.cfg, c.probe = cfg, true
	return c, nil
}

// NewClient returns a Client that connects with dial (tests pass a bufconn dialer).
func NewClient(addrs []string, dial func(addr string) (*grpc.ClientConn, error), log *slog.Logger) (*Client, error) {
	if len(addrs) == 0 {
		return nil, fmt.Errorf("%w: no coordinator addresses", ErrInvalid)
	}
	c := &Client{addrs: addrs, log: log, alarm: alarm{after: warnAfter, every: warnEvery}}
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
	permanent := map[int]bool{} // addresses that failed for a reason retrying cannot heal
	for attempt := 0; ; attempt++ {
		i := (start + attempt) % len(c.stubs)
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		resp, err := f(actx, c.stubs[i])
		cancel()
		if err == nil {
			c.next.Store(int64(i))
			c.succeeded()
			return resp, nil
		}
		if ctx.Err() != nil {
			return resp, fromStatus(err)
		}
		if status.Code(err) == codes.Unauthenticated {
			return resp, fmt.Errorf("coordinator %w", rpc.Diagnose(ctx, c.addrs[i], c.cfg, err, false))
		}
		if !retryable(err) {
			return resp, fromStatus(err)
		}
		if d := c.failed(ctx, i, err); d != nil && d.Permanent() {
			if permanent[i] = true; len(permanent) == len(c.stubs) {
				return resp, fmt.Errorf("coordinator %w", d)
			}
		}
		if (attempt+1)%len(c.stubs) == 0 {
			if sleep(ctx, backoff) != nil {
				return resp, fromStatus(err)
			}
			backoff = min(2*backoff, backoffMax)
		}
	}
}

// failed logs a retried failure: at Debug always, at Warn as the alarm allows. Before any call
// has succeeded it diagnoses every failure and returns the diagnosis, so that call can give up on
// a misconfiguration; afterwards it diagnoses only what it warns about, and returns nil.
func (c *Client) failed(ctx context.Context, i int, err error) *rpc.Diagnosis {
	c.log.Debug("coordinator call failed; retrying", "addr", c.addrs[i], "err", err)
	warn, outage := c.alarm.failed(time.Now())
	fresh := !c.everOK.Load()
	if !warn && !fresh {
		return nil
	}
	var remote *RemoteError // the coordinator answered (no leader yet): nothing to probe
	d := rpc.Diagnose(ctx, c.addrs[i], c.cfg, err, c.probe && fresh && !errors.As(fromStatus(err), &remote))
	if warn {
		args := []any{"addr", c.addrs[i], "cause", d.Cause, "failing_for", outage.Round(100 * time.Millisecond), "coordinators", c.addrs}
		if d.Fix != "" {
			args = append(args, "fix", d.Fix)
		}
		c.log.Warn("coordinator unavailable; retrying", args...)
	}
	if fresh {
		return d
	}
	return nil
}

// succeeded records an answer and reports the end of an outage it warned about.
func (c *Client) succeeded() {
	c.everOK.Store(true)
	if warned, outage := c.alarm.ok(time.Now()); warned {
		c.log.Info("coordinator reachable again", "after", outage.Round(100*time.Millisecond))
	}
}

// alarm rate-limits the warnings of one outage: the first after it lasted `after`, then one every
// `every`. Calls run concurrently, so it is shared and locked.
type alarm struct {
	after, every time.Duration

	mu     sync.Mutex
	since  time.Time // first failure since the last success; zero while healthy
	warned time.Time // last warning of this outage
}

// failed records a failure at now and says whether to warn, and how long the outage has lasted.
func (a *alarm) failed(now time.Time) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.since.IsZero() {
		a.since = now
	}
	outage := now.Sub(a.since)
	if outage < a.after || (!a.warned.IsZero() && now.Sub(a.warned) < a.every) {
		return false, outage
	}
	a.warned = now
	return true, outage
}

// ok ends the outage; it reports whether a warning was given and how long the outage lasted.
func (a *alarm) ok(now time.Time) (bool, time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	warned, outage := !a.warned.IsZero(), now.Sub(a.since)
	a.since, a.warned = time.Time{}, time.Time{}
	return warned, outage
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
		began := time.Now()
		delivered, err := c.watchOnce(ctx, i, &after, fn)
		if time.Since(began) > warnAfter {
			c.succeeded() // the stream was up, quiet: an answer as good as any
		}
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
		if d := c.failed(ctx, i, err); d != nil && d.Permanent() && len(c.stubs) == 1 {
			return fmt.Errorf("coordinator %w", d)
		}
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
		c.succeeded()
		if err := fn(v); err != nil {
			return delivered, fnError{err}
		}
		*after, delivered = v.GetVersion(), true
	}
}
