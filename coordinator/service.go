package coordinator

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// shutdownGrace is how long running RPCs get to finish when a service stops.
const shutdownGrace = 2 * time.Second

// Service is a whole coordinator process: durable raft node, gRPC server (Coordinator, health,
// reflection) and its metrics. `tsd coordinator` runs one; `tsd local` embeds a single-node one.
type Service struct {
	node    *Node
	server  *rpc.Server
	adapter *GRPCServer
	lis     net.Listener
	stop    chan struct{}
	done    chan struct{}
}

// Start opens cfg.DataDir, starts raft and the gRPC server, and, for a new node with cfg.Join,
// asks the cluster to add it (retrying until ctx ends). With an address on port 0 it advertises
// the port it bound. Health reports SERVING while the node knows a leader.
func Start(ctx context.Context, cfg Config, rc rpc.Config, reg prometheus.Registerer, log *slog.Logger) (*Service, error) {
	lis, err := net.Listen("tcp", cmp.Or(cfg.GRPCBind, cfg.GRPCAddr))
	if err != nil {
		return nil, fmt.Errorf("coordinator: grpc listen: %w", err)
	}
	if cfg.GRPCAddr == "" || hasPortZero(cfg.GRPCAddr) {
		cfg.GRPCAddr = lis.Addr().String()
	}
	s, err := start(cfg, rc, reg, lis, log)
	if err != nil {
		_ = lis.Close()
		return nil, err
	}
	if err := s.join(ctx, cfg, rc, log); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func start(cfg Config, rc rpc.Config, reg prometheus.Registerer, lis net.Listener, log *slog.Logger) (*Service, error) {
	if err := errors.Join(cfg.Validate(), rc.Validate()); err != nil {
		return nil, err
	}
	if rc.TLSCert != "" && rc.TLSCA == "" {
		// Followers dial the leader to forward writes; without a CA they would dial in plaintext.
		return nil, fmt.Errorf("%w: a coordinator serving TLS needs --tls-ca to reach its peers", ErrInvalid)
	}
	server, err := rpc.NewServer(rc, reg, log)
	if err != nil {
		return nil, err
	}
	st, err := OpenStorage(cfg, log)
	if err != nil {
		return nil, err
	}
	node, err := NewNode(cfg, st, time.Now, log)
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	if reg != nil {
		if err := node.RegisterMetrics(reg); err != nil {
			_ = node.Shutdown()
			return nil, err
		}
	}
	adapter := NewGRPCServer(node, func(a string) (*grpc.ClientConn, error) { return rpc.Dial(a, rc) }, log)
	tsdv1.RegisterCoordinatorServer(server, adapter)
	s := &Service{node: node, server: server, adapter: adapter, lis: lis, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		if err := server.Serve(lis); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			log.Error("grpc server stopped", "err", err)
		}
	}()
	go s.reportHealth()
	log.Info("coordinator started", "node", cfg.NodeID, "grpc", cfg.GRPCAddr, "raft", node.cfg.RaftAddr,
		"data", cfg.DataDir, "restart", node.HasState())
	return s, nil
}

// join asks the cluster named by cfg.Join to add this node, unless it bootstrapped or restarted
// as a voter; it returns once the node is a voter (see Node.Join). A node that restarts as a
// non-voter (it stopped while catching up) finishes joining in the background, through cfg.Join
// or the nodes its state knows.
func (s *Service) join(ctx context.Context, cfg Config, rc rpc.Config, log *slog.Logger) error {
	if len(cfg.Bootstrap) > 0 && !s.node.HasState() {
		return nil
	}
	if s.node.HasState() {
		if s.node.IsVoter() {
			return nil
		}
		addrs := cfg.Join
		if len(addrs) == 0 {
			addrs = s.node.knownGRPCAddrs()
		}
		if len(addrs) == 0 {
			log.Warn("this node is not a voter and knows no coordinator to finish joining through: restart it with --join")
			return nil
		}
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			<-s.stop
			cancel()
		}()
		go func() {
			if err := s.promote(ctx, addrs, cfg.Replace, rc, log); err != nil && ctx.Err() == nil {
				log.Error("finishing the join failed; this node stays a non-voter", "err", err)
			}
		}()
		return nil
	}
	if len(cfg.Join) == 0 {
		return fmt.Errorf("%w: a new node needs --bootstrap or --join", ErrInvalid)
	}
	return s.promote(ctx, cfg.Join, cfg.Replace, rc, log)
}

// promote joins through addrs as a non-voter and calls again each time this node has applied
// the index the leader named, until the leader makes it a voter.
func (s *Service) promote(ctx context.Context, addrs []string, replace bool, rc rpc.Config, log *slog.Logger) error {
	c, err := Dial(addrs, rc, log)
	if err != nil {
		return err
	}
	defer c.Close()
	req := JoinRequest{NodeInfo: s.node.self(), Replace: replace}
	for {
		res, err := c.Join(ctx, req)
		if err != nil {
			return fmt.Errorf("coordinator: join %v: %w", addrs, err)
		}
		if res.Voter {
			// The leader committed the promotion; wait until this node's log has it too, so that
			// a restart right after Start finds itself a voter.
			for !s.node.IsVoter() {
				if err := sleep(ctx, 50*time.Millisecond); err != nil {
					return fmt.Errorf("coordinator: join %v: waiting for the promotion to replicate: %w", addrs, err)
				}
			}
			log.Info("joined cluster as voter", "via", addrs)
			return nil
		}
		log.Info("joined as non-voter; catching up before promotion", "via", addrs,
			"applied", s.node.AppliedIndex(), "catch_up_index", res.CatchUpIndex)
		for s.node.AppliedIndex() < res.CatchUpIndex {
			if err := sleep(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("coordinator: join %v: catching up to index %d: %w", addrs, res.CatchUpIndex, err)
			}
		}
		req.AppliedIndex = s.node.AppliedIndex()
	}
}

// reportHealth keeps the health status in step with leadership: SERVING while a leader is known.
func (s *Service) reportHealth() {
	defer close(s.done)
	for {
		ch := s.node.LeaderChanged()
		id, _ := s.node.Leader()
		s.server.SetServing(id != "", tsdv1.Coordinator_ServiceDesc.ServiceName)
		select {
		case <-ch:
		case <-s.stop:
			return
		}
	}
}

// Node is the service's raft node.
func (s *Service) Node() *Node { return s.node }

// GRPCAddr is the address the service's gRPC server listens on.
func (s *Service) GRPCAddr() string { return s.lis.Addr().String() }

// Close stops serving (running RPCs get shutdownGrace), then leaves raft and closes the storage.
func (s *Service) Close() error {
	close(s.stop)
	<-s.done
	s.server.Shutdown(shutdownGrace)
	return errors.Join(s.adapter.Close(), s.node.Shutdown())
}
