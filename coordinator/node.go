package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Clock is the node's time source; tests inject a fake one to expire leases without sleeping.
type Clock func() time.Time

// Node is one coordinator: a raft member whose state machine is FSM. Writes go through raft and
// must be made on the leader (a follower answers ErrNotLeader; the gRPC adapter then forwards).
// Reads are served from the local state machine, so on a follower they can lag the leader by the
// replication delay; a version seen once is never unseen, because the log only grows.
type Node struct {
	cfg      Config
	raft     *raft.Raft
	fsm      *FSM
	storage  *Storage
	clock    Clock
	log      *slog.Logger
	metrics  *nodeMetrics
	existing bool // raft state was on disk at start (a restart)

	leaderMu sync.Mutex
	leaderCh chan struct{} // closed and replaced on every leader change

	done chan struct{}
	wg   sync.WaitGroup
}

// NewNode starts raft on st with a new FSM and bootstraps the cluster when cfg.Bootstrap is set
// and st holds no raft state. The node owns st from here on: Shutdown closes it.
func NewNode(cfg Config, st *Storage, clock Clock, log *slog.Logger) (*Node, error) {
	if cfg.RaftAddr == "" || hasPortZero(cfg.RaftAddr) {
		cfg.RaftAddr = string(st.Transport.LocalAddr())
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	existing, err := raft.HasExistingState(st.Logs, st.Stable, st.Snapshots)
	if err != nil {
		return nil, fmt.Errorf("coordinator: read raft state: %w", err)
	}
	n := &Node{
		cfg: cfg, fsm: NewFSM(), storage: st, clock: clock, log: log.With("node", cfg.NodeID),
		metrics: newNodeMetrics(), existing: existing, leaderCh: make(chan struct{}), done: make(chan struct{}),
	}
	r, err := raft.NewRaft(n.raftConfig(), n.fsm, st.Logs, st.Stable, st.Snapshots, st.Transport)
	if err != nil {
		return nil, fmt.Errorf("coordinator: start raft: %w", err)
	}
	n.raft = r
	if len(cfg.Bootstrap) > 0 && !existing {
		// ErrCantBootstrap here means a peer of the same list bootstrapped first and already
		// replicated its log to this node (it was slow to start): it is in the cluster.
		err := r.BootstrapCluster(n.bootstrapConfiguration()).Error()
		if errors.Is(err, raft.ErrCantBootstrap) {
			n.log.Info("bootstrap skipped: a peer already replicated the cluster's log here")
		} else if err != nil {
			_ = r.Shutdown().Error()
			return nil, fmt.Errorf("coordinator: bootstrap: %w", err)
		}
	}
	n.wg.Add(1)
	go n.watchLeader()
	return n, nil
}

func (n *Node) raftConfig() *raft.Config {
	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.cfg.NodeID)
	rc.HeartbeatTimeout = n.cfg.HeartbeatTimeout
	rc.ElectionTimeout = n.cfg.ElectionTimeout
	rc.LeaderLeaseTimeout = n.cfg.HeartbeatTimeout / 2
	rc.SnapshotThreshold = n.cfg.SnapshotThreshold
	rc.SnapshotInterval = n.cfg.SnapshotInterval
	rc.TrailingLogs = n.cfg.SnapshotThreshold
	rc.Logger = newRaftLogger(n.log)
	return rc
}

// bootstrapConfiguration lists the initial voters; this node's entry may omit its addresses.
func (n *Node) bootstrapConfiguration() raft.Configuration {
	var c raft.Configuration
	for _, p := range n.peers() {
		c.Servers = append(c.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	return c
}

// peers is the bootstrap list with this node's addresses filled in.
func (n *Node) peers() []NodeInfo {
	out := make([]NodeInfo, 0, len(n.cfg.Bootstrap))
	for _, p := range n.cfg.Bootstrap {
		if p.ID == n.cfg.NodeID {
			p = n.self()
		}
		out = append(out, p)
	}
	return out
}

func (n *Node) self() NodeInfo {
	return NodeInfo{ID: n.cfg.NodeID, RaftAddr: n.cfg.RaftAddr, GRPCAddr: n.cfg.GRPCAddr}
}

// HasState reports whether raft state was on disk when the node started (a restart: no need to
// bootstrap or join).
func (n *Node) HasState() bool { return n.existing }

// watchLeader follows leadership: it wakes LeaderChanged waiters and, on becoming leader, records
// the nodes' gRPC addresses so followers can forward to this node. Observations can be dropped
// under load, so a ticker re-checks too.
func (n *Node) watchLeader() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 16)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	tick := time.NewTicker(n.cfg.HeartbeatTimeout)
	defer tick.Stop()
	var last raft.ServerID
	for {
		select {
		case <-n.done:
			return
		case <-ch:
		case <-tick.C:
		}
		_, id := n.raft.LeaderWithID()
		if id == last {
			continue
		}
		last = id
		n.log.Info("leader changed", "leader", string(id), "leading", id == raft.ServerID(n.cfg.NodeID))
		n.metrics.leaderChanges.Inc()
		n.leaderMu.Lock()
		close(n.leaderCh)
		n.leaderCh = make(chan struct{})
		n.leaderMu.Unlock()
		if id == raft.ServerID(n.cfg.NodeID) {
			n.wg.Add(1)
			go func() { // a commit; leader changes must not wait for it
				defer n.wg.Done()
				n.recordNodes()
			}()
		}
	}
}

// recordNodes writes this node's addresses, and the bootstrap peers' the state lacks, into the
// state machine. A failure is logged, not fatal: forwarding falls back to the bootstrap list.
func (n *Node) recordNodes() {
	var missing []NodeInfo
	n.fsm.view(func(s *State) {
		for _, p := range append(n.peers(), n.self()) {
			if got, ok := s.Nodes[p.ID]; (!ok || got != p) && p.validate() == nil {
				missing = append(missing, p)
			}
		}
	})
	if len(missing) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.ApplyTimeout)
	defer cancel()
	if _, err := n.apply(ctx, &command{Op: opSetNodes, Nodes: missing}); err != nil {
		n.log.Warn("record node addresses", "err", err)
	}
}

// LeaderChanged returns a channel closed at the next leader change.
func (n *Node) LeaderChanged() <-chan struct{} {
	n.leaderMu.Lock()
	defer n.leaderMu.Unlock()
	return n.leaderCh
}

// Leader returns the current leader's id and gRPC address ("" when unknown).
func (n *Node) Leader() (id, grpcAddr string) {
	_, lid := n.raft.LeaderWithID()
	id = string(lid)
	if id == "" {
		return "", ""
	}
	return id, n.grpcAddrOf(id)
}

// IsLeader reports whether this node leads now.
func (n *Node) IsLeader() bool { return n.raft.State() == raft.Leader }

// ID is this node's raft id.
func (n *Node) ID() string { return n.cfg.NodeID }

func (n *Node) grpcAddrOf(id string) string {
	var addr string
	n.fsm.view(func(s *State) { addr = s.Nodes[id].GRPCAddr })
	if addr != "" {
		return addr
	}
	for _, p := range n.peers() {
		if p.ID == id {
			return p.GRPCAddr
		}
	}
	return ""
}

// notLeader is ErrNotLeader naming the leader, or ErrNoLeader while there is none.
func (n *Node) notLeader() error {
	id, _ := n.Leader()
	if id == "" {
		return fmt.Errorf("%w: election under way or no quorum", ErrNoLeader)
	}
	return fmt.Errorf("%w: %s leads", ErrNotLeader, id)
}

// apply proposes c through raft and waits for it to be applied on this node (the leader). It
// stamps the leader's clock into c, validates it before replicating, and bounds the wait by the
// context deadline and ApplyTimeout.
func (n *Node) apply(ctx context.Context, c *command) (any, error) {
	if n.raft.State() != raft.Leader {
		return nil, n.notLeader()
	}
	c.NowUnixMs = n.clock().UnixMilli()
	if err := c.validate(); err != nil {
		n.metrics.reject(c.Op, err)
		return nil, err
	}
	b, err := c.encode()
	if err != nil {
		return nil, err
	}
	timeout := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(dl))
	}
	if timeout <= 0 {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.DeadlineExceeded)
	}
	start := time.Now()
	f := n.raft.Apply(b, timeout)
	if err := f.Error(); err != nil {
		return nil, n.raftErr(err)
	}
	n.metrics.applySeconds.WithLabelValues(string(c.Op)).Observe(time.Since(start).Seconds())
	res, ok := f.Response().(result)
	if !ok {
		return nil, fmt.Errorf("coordinator: apply returned %T", f.Response())
	}
	if res.err != nil {
		n.metrics.reject(c.Op, res.err)
		n.log.Info("command refused", "op", string(c.Op), "err", res.err)
	}
	return res.val, res.err
}

// raftErr classifies raft's errors: leadership moved (the adapter forwards), or unavailable.
func (n *Node) raftErr(err error) error {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress):
		return fmt.Errorf("%w: %w", n.notLeader(), err)
	}
	return fmt.Errorf("%w: %w", ErrUnavailable, err)
}

// applyAs proposes c and returns its result as T.
func applyAs[T any](ctx context.Context, n *Node, c *command) (T, error) {
	var zero T
	v, err := n.apply(ctx, c)
	if err != nil {
		return zero, err
	}
	t, ok := v.(T)
	if !ok {
		return zero, fmt.Errorf("coordinator: %s returned %T", c.Op, v)
	}
	return t, nil
}

// AcquireLearnerLease grants the learner lease (see State.acquire for the rules).
func (n *Node) AcquireLearnerLease(ctx context.Context, r AcquireLease) (AcquireResult, error) {
	if r.TTLMs == 0 {
		r.TTLMs = n.cfg.LearnerTTL.Milliseconds()
	}
	return applyAs[AcquireResult](ctx, n, &command{Op: opAcquireLease, Acquire: &r})
}

// RenewLearnerLease extends the lease of the current epoch.
func (n *Node) RenewLearnerLease(ctx context.Context, r RenewLease) (LearnerLease, error) {
	if r.TTLMs == 0 {
		r.TTLMs = n.cfg.LearnerTTL.Milliseconds()
	}
	return applyAs[LearnerLease](ctx, n, &command{Op: opRenewLease, Renew: &r})
}

// PublishVersion records v if its epoch is current and it is exactly latest+1; it returns the
// version as committed (CommitIndex set).
func (n *Node) PublishVersion(ctx context.Context, v Version) (Version, error) {
	v.CommitIndex = 0
	return applyAs[Version](ctx, n, &command{Op: opPublish, Publish: &v})
}

// RegisterActor starts an actor's lease.
func (n *Node) RegisterActor(ctx context.Context, r RegisterActor) (RegisterResult, error) {
	if r.TTLMs == 0 {
		r.TTLMs = n.cfg.ActorTTL.Milliseconds()
	}
	return applyAs[RegisterResult](ctx, n, &command{Op: opRegisterActor, Register: &r})
}

// Heartbeat renews an actor's lease and records the version it holds.
func (n *Node) Heartbeat(ctx context.Context, r Heartbeat) (HeartbeatResult, error) {
	if r.TTLMs == 0 {
		r.TTLMs = n.cfg.ActorTTL.Milliseconds()
	}
	return applyAs[HeartbeatResult](ctx, n, &command{Op: opHeartbeat, Heartbeat: &r})
}

// DeregisterActor ends an actor's lease; deregistering an unknown actor is not an error, so the
// call can be retried.
func (n *Node) DeregisterActor(ctx context.Context, actorID string) error {
	if err := checkID("actor_id", actorID); err != nil {
		return err
	}
	_, err := n.apply(ctx, &command{Op: opDeregisterActor, ActorID: actorID})
	return err
}

// WeightSource says where an actor should fetch a version, peers first and the learner last. It
// is a write because it charges the chosen peer, spreading later fetchers over other holders.
func (n *Node) WeightSource(ctx context.Context, r SourceRequest) ([]string, error) {
	return applyAs[[]string](ctx, n, &command{Op: opAssignSource, Source: &r})
}

// maxPromoteLag is how many log entries a non-voter may still miss when it is promoted: the log
// keeps growing while it catches up, so "none" might never be reached; a few are replicated at
// the next heartbeat.
const maxPromoteLag = 128

// Join adds a node to the cluster the way etcd adds learners: first as a non-voter, which
// receives the log but does not count for quorum, so a node that never comes up (a wrong
// address) cannot stop commits. The joiner calls Join again once it has applied the index this
// returns; the leader then promotes it to voter if it is within maxPromoteLag of the log's end
// (else it answers a newer index to catch up to). Joining again as a voter is a no-op.
//
// A Join whose id or raft address a voter already holds with other addresses is refused
// (ErrMemberExists) unless r.Replace: the voter may be alive, and removing it would shrink the
// quorum to make room for a node that may never answer. A non-voter in the way (a join that
// never finished) is replaced without asking. The leader is never replaced.
func (n *Node) Join(ctx context.Context, r JoinRequest) (JoinResult, error) {
	if err := r.validate(); err != nil {
		return JoinResult{}, err
	}
	if n.raft.State() != raft.Leader {
		return JoinResult{}, n.notLeader()
	}
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return JoinResult{}, n.raftErr(err)
	}
	var self *raft.Server
	for _, s := range cf.Configuration().Servers {
		sameID, sameAddr := s.ID == raft.ServerID(r.ID), s.Address == raft.ServerAddress(r.RaftAddr)
		switch {
		case sameID && sameAddr:
			self = &s
		case sameID || sameAddr:
			if err := n.replaceable(s, r); err != nil {
				return JoinResult{}, err
			}
			if err := n.raft.RemoveServer(s.ID, 0, n.cfg.ApplyTimeout).Error(); err != nil {
				return JoinResult{}, n.raftErr(err)
			}
			n.log.Warn("member removed to make room for a join", "id", string(s.ID), "raft", string(s.Address),
				"voter", s.Suffrage == raft.Voter, "joining", r.ID, "joining_raft", r.RaftAddr)
		}
	}
	if self == nil {
		if err := n.raft.AddNonvoter(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
			return JoinResult{}, n.raftErr(err)
		}
		n.log.Info("node joined as non-voter", "id", r.ID, "raft", r.RaftAddr, "grpc", r.GRPCAddr)
	}
	if _, err := n.apply(ctx, &command{Op: opSetNodes, Nodes: []NodeInfo{r.NodeInfo}}); err != nil {
		return JoinResult{}, err
	}
	if self != nil && self.Suffrage == raft.Voter {
		return JoinResult{Voter: true}, nil
	}
	last := n.raft.LastIndex()
	if self == nil || r.AppliedIndex == 0 || r.AppliedIndex+maxPromoteLag < last {
		return JoinResult{CatchUpIndex: last}, nil
	}
	if err := n.raft.AddVoter(raft.ServerID(r.ID), raft.ServerAddress(r.RaftAddr), 0, n.cfg.ApplyTimeout).Error(); err != nil {
		return JoinResult{}, n.raftErr(err)
	}
	n.log.Info("node promoted to voter", "id", r.ID, "applied", r.AppliedIndex, "last", last)
	return JoinResult{Voter: true}, nil
}

// replaceable says whether member s may be removed for the join r.
func (n *Node) replaceable(s raft.Server, r JoinRequest) error {
	if s.ID == raft.ServerID(n.cfg.NodeID) {
		return fmt.Errorf("%w: %s at %s is the leader; a join cannot replace it", ErrMemberExists, s.ID, s.Address)
	}
	if s.Suffrage == raft.Voter && !r.Replace {
		return fmt.Errorf("%w: voter %s is at %s; joining %s at %s would remove it (if that node is gone for good, join with replace)",
			ErrMemberExists, s.ID, s.Address, r.ID, r.RaftAddr)
	}
	return nil
}

// IsVoter reports whether this node is a voter in its latest known configuration.
func (n *Node) IsVoter() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == raft.ServerID(n.cfg.NodeID) {
			return s.Suffrage == raft.Voter
		}
	}
	return false
}

// AppliedIndex is the last raft index this node applied.
func (n *Node) AppliedIndex() uint64 { return n.raft.AppliedIndex() }

// knownGRPCAddrs are the other nodes' gRPC addresses in the state, for a restarted node that
// must finish joining without --join.
func (n *Node) knownGRPCAddrs() []string {
	var out []string
	n.fsm.view(func(s *State) {
		for id, info := range s.Nodes {
			if id != n.cfg.NodeID && info.GRPCAddr != "" {
				out = append(out, info.GRPCAddr)
			}
		}
	})
	slices.Sort(out)
	return out
}

// Version returns a published version from local state; 0 means the latest.
func (n *Node) Version(v uint64) (Version, error) {
	var out Version
	var count uint64
	n.fsm.view(func(s *State) {
		count = uint64(len(s.Versions))
		want := v
		if want == 0 {
			want = count
		}
		if want >= 1 && want <= count {
			out = s.Versions[want-1]
		}
	})
	if out.Version == 0 {
		return Version{}, fmt.Errorf("%w: %d (this node has %d)", ErrUnknownVersion, v, count)
	}
	return out, nil
}

// VersionsAfter returns up to limit local versions newer than after, and a channel closed when
// newer ones are applied; read, then wait on the channel, then read again.
func (n *Node) VersionsAfter(after uint64, limit int) ([]Version, <-chan struct{}) {
	return n.fsm.versionsAfter(after, limit)
}

// ClusterState is this node's view of membership and the replicated state.
func (n *Node) ClusterState() (ClusterState, error) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return ClusterState{}, n.raftErr(err)
	}
	_, leader := n.raft.LeaderWithID()
	cs := ClusterState{LeaderID: string(leader), CommitIndex: n.raft.AppliedIndex()}
	now := n.clock().UnixMilli()
	n.fsm.view(func(s *State) {
		cs.Run, cs.Learner, cs.Latest = clone(s.Run), clone(s.Learner), s.latest()
		cs.Versions = uint64(len(s.Versions))
		cs.Actors = s.liveActors(now)
	})
	for _, srv := range cf.Configuration().Servers {
		id := string(srv.ID)
		cs.Members = append(cs.Members, Member{
			NodeInfo: NodeInfo{ID: id, RaftAddr: string(srv.Address), GRPCAddr: n.grpcAddrOf(id)},
			Voter:    srv.Suffrage == raft.Voter,
			Leader:   srv.ID == leader,
		})
	}
	return cs, nil
}

func clone[T any](p *T) *T {
	if p == nil {
		return nil
	}
	c := *p
	return &c
}

// Shutdown leaves raft (without transferring leadership: the rest elect a new leader within an
// election timeout) and closes the storage.
func (n *Node) Shutdown() error {
	close(n.done)
	err := n.raft.Shutdown().Error()
	n.wg.Wait()
	return errors.Join(err, n.storage.Close())
}
