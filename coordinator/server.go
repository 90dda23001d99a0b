package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
)

const (
	// forwardedKey marks a request a follower forwarded; it is never forwarded a second time.
	forwardedKey = "tsd-forwarded-by"
	// errorDomain is the ErrorInfo domain of the coordinator's refusals.
	errorDomain = "coordinator.tsd"
	// watchBatch is how many versions WatchVersions reads from the state per lock.
	watchBatch = 64
)

// GRPCServer serves tsd.v1.Coordinator from a Node. Handlers are thin: convert, call the node,
// map the error with toStatus. A write that reaches a follower is forwarded to the leader's gRPC
// address, so clients may use any coordinator.
type GRPCServer struct {
	tsdv1.UnimplementedCoordinatorServer
	node *Node
	dial func(addr string) (*grpc.ClientConn, error)
	log  *slog.Logger

	mu    sync.Mutex
	conns map[string]*grpc.ClientConn // to leaders, by gRPC address
}

var _ tsdv1.CoordinatorServer = (*GRPCServer)(nil)

// NewGRPCServer serves n; dial connects to another coordinator for forwarding (rpc.Dial with
// this role's rpc.Config, so the token and TLS carry over).
func NewGRPCServer(n *Node, dial func(addr string) (*grpc.ClientConn, error), log *slog.Logger) *GRPCServer {
	return &GRPCServer{node: n, dial: dial, log: log, conns: map[string]*grpc.ClientConn{}}
}

// Close closes the connections used for forwarding.
func (s *GRPCServer) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for addr, cc := range s.conns {
		errs = append(errs, cc.Close())
		delete(s.conns, addr)
	}
	return errors.Join(errs...)
}

func (s *GRPCServer) conn(addr string) (*grpc.ClientConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cc, ok := s.conns[addr]; ok {
		return cc, nil
	}
	cc, err := s.dial(addr)
	if err != nil {
		return nil, err
	}
	s.conns[addr] = cc
	return cc, nil
}

// write runs a write on this node or, when this node follows, forwards the original request to
// the leader. A forwarded request that meets a follower again (leadership moved in between) is
// answered Unavailable, and the client retries.
func write[Resp any](ctx context.Context, s *GRPCServer, method string, local func() (Resp, error),
	remote func(context.Context, tsdv1.CoordinatorClient) (Resp, error)) (Resp, error) {
	var zero Resp
	resp, err := local()
	if !errors.Is(err, ErrNotLeader) {
		return resp, toStatus(err)
	}
	md, _ := metadata.FromIncomingContext(ctx)
	_, addr := s.node.Leader()
	if len(md.Get(forwardedKey)) > 0 || addr == "" {
		return zero, toStatus(err)
	}
	cc, derr := s.conn(addr)
	if derr != nil {
		return zero, status.Errorf(codes.Unavailable, "forward to leader at %s: %v", addr, derr)
	}
	s.node.metrics.forwarded.WithLabelValues(method).Inc()
	return remote(metadata.AppendToOutgoingContext(ctx, forwardedKey, s.node.ID()), tsdv1.NewCoordinatorClient(cc))
}

// toStatus is the one place that maps the package's errors to gRPC codes. The status carries an
// ErrorInfo with the sentinel's reason, so Client callers can use errors.Is as well.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	st := status.New(codeOf(err), err.Error())
	if r := reasonOf(err); r != "OTHER" {
		if d, derr := st.WithDetails(&errdetails.ErrorInfo{Reason: r, Domain: errorDomain}); derr == nil {
			st = d
		}
	}
	return st.Err()
}

// codeOf follows gRPC's litmus test: Unavailable = retry the call, FailedPrecondition = fix the
// state first, InvalidArgument = fix the request.
func codeOf(err error) codes.Code {
	is := func(targets ...error) bool {
		for _, t := range targets {
			if errors.Is(err, t) {
				return true
			}
		}
		return false
	}
	switch {
	case is(ErrInvalid):
		return codes.InvalidArgument
	case is(ErrLeaseHeld, ErrConfigMismatch, ErrFenced, ErrLeaseExpired, ErrVersionOrder):
		return codes.FailedPrecondition
	case is(ErrUnknownActor, ErrUnknownVersion):
		return codes.NotFound
	case is(ErrMemberExists):
		return codes.AlreadyExists
	case is(ErrNotLeader, ErrNoLeader, ErrUnavailable):
		return codes.Unavailable
	case is(context.DeadlineExceeded):
		return codes.DeadlineExceeded
	case is(context.Canceled):
		return codes.Canceled
	}
	return codes.Internal
}

func missing(field string) error {
	return toStatus(fmt.Errorf("%w: %s is required", ErrInvalid, field))
}

func (s *GRPCServer) AcquireLearnerLease(ctx context.Context, req *tsdv1.AcquireLearnerLeaseRequest) (*tsdv1.AcquireLearnerLeaseResponse, error) {
	if req.GetRun() == nil {
		return nil, missing("run")
	}
	r := AcquireLease{LearnerID: req.GetLearnerId(), Addr: req.GetAddr(), Run: runFromProto(req.GetRun()), TTLMs: req.GetTtlMs()}
	return write(ctx, s, "AcquireLearnerLease", func() (*tsdv1.AcquireLearnerLeaseResponse, error) {
		res, err := s.node.AcquireLearnerLease(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.AcquireLearnerLeaseResponse{Lease: leaseToProto(&res.Lease), Latest: versionToProto(res.Latest)}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.AcquireLearnerLeaseResponse, error) {
		return c.AcquireLearnerLease(ctx, req)
	})
}

func (s *GRPCServer) RenewLearnerLease(ctx context.Context, req *tsdv1.RenewLearnerLeaseRequest) (*tsdv1.RenewLearnerLeaseResponse, error) {
	r := RenewLease{LearnerID: req.GetLearnerId(), Epoch: req.GetEpoch(), TTLMs: req.GetTtlMs()}
	return write(ctx, s, "RenewLearnerLease", func() (*tsdv1.RenewLearnerLeaseResponse, error) {
		l, err := s.node.RenewLearnerLease(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.RenewLearnerLeaseResponse{Lease: leaseToProto(&l)}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.RenewLearnerLeaseResponse, error) {
		return c.RenewLearnerLease(ctx, req)
	})
}

func (s *GRPCServer) PublishVersion(ctx context.Context, req *tsdv1.PublishVersionRequest) (*tsdv1.PublishVersionResponse, error) {
	if req.GetVersion() == nil {
		return nil, missing("version")
	}
	v := versionFromProto(req.GetVersion())
	return write(ctx, s, "PublishVersion", func() (*tsdv1.PublishVersionResponse, error) {
		got, err := s.node.PublishVersion(ctx, v)
		if err != nil {
			return nil, err
		}
		return &tsdv1.PublishVersionResponse{CommitIndex: got.CommitIndex}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.PublishVersionResponse, error) {
		return c.PublishVersion(ctx, req)
	})
}

func (s *GRPCServer) RegisterActor(ctx context.Context, req *tsdv1.RegisterActorRequest) (*tsdv1.RegisterActorResponse, error) {
	r := RegisterActor{ActorID: req.GetActorId(), Addr: req.GetAddr(), TTLMs: req.GetTtlMs()}
	return write(ctx, s, "RegisterActor", func() (*tsdv1.RegisterActorResponse, error) {
		res, err := s.node.RegisterActor(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.RegisterActorResponse{ExpiresUnixMs: res.ExpiresUnixMs, Learner: leaseToProto(res.Learner),
			Run: runToProto(res.Run), Latest: versionToProto(res.Latest)}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.RegisterActorResponse, error) {
		return c.RegisterActor(ctx, req)
	})
}

func (s *GRPCServer) Heartbeat(ctx context.Context, req *tsdv1.HeartbeatRequest) (*tsdv1.HeartbeatResponse, error) {
	r := Heartbeat{ActorID: req.GetActorId(), HeldVersion: req.GetHeldVersion(), TTLMs: req.GetTtlMs()}
	return write(ctx, s, "Heartbeat", func() (*tsdv1.HeartbeatResponse, error) {
		res, err := s.node.Heartbeat(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.HeartbeatResponse{ExpiresUnixMs: res.ExpiresUnixMs, Learner: leaseToProto(res.Learner),
			LatestVersion: res.LatestVersion}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.HeartbeatResponse, error) {
		return c.Heartbeat(ctx, req)
	})
}

func (s *GRPCServer) DeregisterActor(ctx context.Context, req *tsdv1.DeregisterActorRequest) (*tsdv1.DeregisterActorResponse, error) {
	return write(ctx, s, "DeregisterActor", func() (*tsdv1.DeregisterActorResponse, error) {
		if err := s.node.DeregisterActor(ctx, req.GetActorId()); err != nil {
			return nil, err
		}
		return &tsdv1.DeregisterActorResponse{}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.DeregisterActorResponse, error) {
		return c.DeregisterActor(ctx, req)
	})
}

func (s *GRPCServer) WeightSource(ctx context.Context, req *tsdv1.WeightSourceRequest) (*tsdv1.WeightSourceResponse, error) {
	r := SourceRequest{ActorID: req.GetActorId(), Version: req.GetVersion()}
	return write(ctx, s, "WeightSource", func() (*tsdv1.WeightSourceResponse, error) {
		addrs, err := s.node.WeightSource(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.WeightSourceResponse{Addrs: addrs}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.WeightSourceResponse, error) {
		return c.WeightSource(ctx, req)
	})
}

func (s *GRPCServer) Join(ctx context.Context, req *tsdv1.JoinRequest) (*tsdv1.JoinResponse, error) {
	r := JoinRequest{NodeInfo: NodeInfo{ID: req.GetNodeId(), RaftAddr: req.GetRaftAddr(), GRPCAddr: req.GetGrpcAddr()},
		Replace: req.GetReplace(), AppliedIndex: req.GetAppliedIndex()}
	return write(ctx, s, "Join", func() (*tsdv1.JoinResponse, error) {
		res, err := s.node.Join(ctx, r)
		if err != nil {
			return nil, err
		}
		return &tsdv1.JoinResponse{Voter: res.Voter, CatchUpIndex: res.CatchUpIndex}, nil
	}, func(ctx context.Context, c tsdv1.CoordinatorClient) (*tsdv1.JoinResponse, error) {
		return c.Join(ctx, req)
	})
}

// GetVersion answers from local state (a follower may not have the newest version yet).
func (s *GRPCServer) GetVersion(_ context.Context, req *tsdv1.GetVersionRequest) (*tsdv1.PolicyVersion, error) {
	v, err := s.node.Version(req.GetVersion())
	if err != nil {
		return nil, toStatus(err)
	}
	return versionToProto(&v), nil
}

// ClusterState answers from local state.
func (s *GRPCServer) ClusterState(context.Context, *tsdv1.ClusterStateRequest) (*tsdv1.ClusterStateResponse, error) {
	cs, err := s.node.ClusterState()
	if err != nil {
		return nil, toStatus(err)
	}
	return clusterToProto(cs), nil
}

// WatchVersions streams the versions after req.after_version as this node applies them. When the
// node loses its leader it ends the stream with Unavailable: a partitioned follower would
// otherwise keep the watcher silently behind; the Client then resumes on another coordinator.
func (s *GRPCServer) WatchVersions(req *tsdv1.WatchVersionsRequest, stream grpc.ServerStreamingServer[tsdv1.PolicyVersion]) error {
	ctx := stream.Context()
	after := req.GetAfterVersion()
	for {
		leaderCh := s.node.LeaderChanged()
		vs, more := s.node.VersionsAfter(after, watchBatch)
		for i := range vs {
			if err := stream.Send(versionToProto(&vs[i])); err != nil {
				return err
			}
			after = vs[i].Version
		}
		if len(vs) > 0 {
			continue
		}
		select {
		case <-more:
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		case <-leaderCh:
			if id, _ := s.node.Leader(); id == "" {
				return toStatus(fmt.Errorf("%w: watch another coordinator", ErrNoLeader))
			}
		}
	}
}
