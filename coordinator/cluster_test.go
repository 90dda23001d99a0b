package coordinator

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testCluster is n nodes over raft's in-memory transport and stores: whole-cluster behaviour,
// partitions included, without disks or sockets.
type testCluster struct {
	t     *testing.T
	nodes []*Node
	trans []*raft.InmemTransport
	clock Clock
}

// fastConfig shortens raft's timers so elections take a fraction of a second.
func fastConfig(id string) Config {
	c := DefaultConfig()
	c.NodeID = id
	c.HeartbeatTimeout = 100 * time.Millisecond
	c.ElectionTimeout = 100 * time.Millisecond
	c.ApplyTimeout = 2 * time.Second
	return c
}

func newTestCluster(t *testing.T, n int, clock Clock, edit func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, clock: clock}
	var peers []Peer
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		_, tr := raft.NewInmemTransport(raft.ServerAddress(id + ".test:7101"))
		c.trans = append(c.trans, tr)
		peers = append(peers, Peer{ID: id, RaftAddr: string(tr.LocalAddr()), GRPCAddr: id + ".test:7001"})
	}
	c.connectAll()
	for i, p := range peers {
		cfg := fastConfig(p.ID)
		cfg.RaftAddr, cfg.GRPCAddr, cfg.Bootstrap = p.RaftAddr, p.GRPCAddr, peers
		if edit != nil {
			edit(&cfg)
		}
		c.nodes = append(c.nodes, c.start(cfg, c.trans[i]))
	}
	return c
}

func (c *testCluster) start(cfg Config, tr *raft.InmemTransport) *Node {
	c.t.Helper()
	store := raft.NewInmemStore()
	st := &Storage{Logs: store, Stable: store, Snapshots: raft.NewInmemSnapshotStore(), Transport: tr}
	n, err := NewNode(cfg, st, c.clock, testLog())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = n.Shutdown() })
	return n
}

func (c *testCluster) connectAll() {
	for _, a := range c.trans {
		for _, b := range c.trans {
			if a != b {
				a.Connect(b.LocalAddr(), b)
			}
		}
	}
}

// isolate cuts node i off from the others in both directions.
func (c *testCluster) isolate(i int) {
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.trans[i].LocalAddr())
		}
	}
}

// leader waits for one of the nodes in among (all if nil) to lead and returns its index.
func (c *testCluster) leader(among ...int) int {
	c.t.Helper()
	if among == nil {
		for i := range c.nodes {
			among = append(among, i)
		}
	}
	found := -1
	waitFor(c.t, 10*time.Second, "a leader", func() bool {
		for _, i := range among {
			if c.nodes[i].IsLeader() {
				found = i
				return true
			}
		}
		return false
	})
	return found
}

// onLeader runs f on the leader among the given nodes, again on the (new) leader while f fails
// because leadership moved: on a loaded test machine an election can happen at any time, and the
// writes used here are safe to retry.
func (c *testCluster) onLeader(f func(n *Node) error, among ...int) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f(c.nodes[c.leader(among...)])
		if err == nil {
			return
		}
		if time.Now().After(deadline) || !(errors.Is(err, ErrNotLeader) || errors.Is(err, ErrNoLeader) || errors.Is(err, ErrUnavailable)) {
			c.t.Fatal(err)
		}
	}
}

// waitVersions waits until node i has applied n versions.
func (c *testCluster) waitVersions(i int, n uint64) {
	c.t.Helper()
	waitFor(c.t, 10*time.Second, fmt.Sprintf("node %d to apply %d versions", i, n), func() bool {
		v, err := c.nodes[i].Version(0)
		return err == nil && v.Version >= n
	})
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestClusterFailover(t *testing.T) {
	c := newTestCluster(t, 3, time.Now, nil)
	ctx := ctxT(t)
	var epoch uint64
	c.onLeader(func(n *Node) error {
		res, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "a", Addr: "a.test:7201", Run: testRun("r"), TTLMs: 60_000})
		epoch = res.Lease.Epoch
		return err
	})
	for v := uint64(1); v <= 2; v++ {
		c.onLeader(func(n *Node) error {
			_, err := n.PublishVersion(ctx, testVersion(v, 8*v, epoch))
			return err
		})
	}
	li := c.leader()
	lead := c.nodes[li]
	follower := (li + 1) % 3
	c.waitVersions(follower, 2)
	if _, err := c.nodes[follower].PublishVersion(ctx, testVersion(3, 24, epoch)); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("publish on a follower: %v, want ErrNotLeader", err)
	}
	if id, addr := c.nodes[follower].Leader(); id != lead.ID() || addr != lead.cfg.GRPCAddr {
		t.Fatalf("follower sees leader %s at %s, want %s at %s", id, addr, lead.ID(), lead.cfg.GRPCAddr)
	}

	c.isolate(li)
	rest := []int{(li + 1) % 3, (li + 2) % 3}
	c.onLeader(func(n *Node) error {
		_, err := n.PublishVersion(ctx, testVersion(3, 24, epoch))
		return err
	}, rest...)
	ni := c.leader(rest...)
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err := lead.PublishVersion(short, testVersion(3, 25, epoch))
	if !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrNoLeader) && !errors.Is(err, ErrUnavailable) {
		t.Fatalf("publish on the isolated old leader: %v, want a not-leader or unavailable error", err)
	}

	c.connectAll()
	for i := range c.nodes {
		c.waitVersions(i, 3)
	}
	want, _ := c.nodes[ni].Version(3)
	for i, n := range c.nodes {
		if got, _ := n.Version(3); got != want {
			t.Fatalf("node %d has version 3 = %+v, leader has %+v", i, got, want)
		}
	}
	waitFor(t, 10*time.Second, "equal states", func() bool {
		a := snapshotBytes(t, c.nodes[0].fsm)
		return bytes.Equal(a, snapshotBytes(t, c.nodes[1].fsm)) && bytes.Equal(a, snapshotBytes(t, c.nodes[2].fsm))
	})
}

func TestLeaseExpiryWithInjectedClock(t *testing.T) {
	clock := newFakeClock()
	c := newTestCluster(t, 3, clock.Now, nil)
	ctx := ctxT(t)
	n := c.nodes[c.leader()]
	a, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "a", Addr: "a.test:1", Run: testRun("r"), TTLMs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n.RegisterActor(ctx, RegisterActor{ActorID: "x", Addr: "x.test:1", TTLMs: 1000}); err != nil {
		t.Fatal(err)
	}
	if _, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "b", Addr: "b.test:1", Run: testRun("r"), TTLMs: 1000}); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second learner: %v, want ErrLeaseHeld", err)
	}
	if cs, _ := n.ClusterState(); len(cs.Actors) != 1 {
		t.Fatalf("live actors %+v", cs.Actors)
	}

	clock.Advance(2 * time.Second)
	if cs, _ := n.ClusterState(); len(cs.Actors) != 0 {
		t.Fatalf("expired actor still listed: %+v", cs.Actors)
	}
	if _, err := n.Heartbeat(ctx, Heartbeat{ActorID: "x", TTLMs: 1000}); !errors.Is(err, ErrUnknownActor) {
		t.Fatalf("heartbeat after expiry: %v, want ErrUnknownActor", err)
	}
	b, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "b", Addr: "b.test:1", Run: testRun("r"), TTLMs: 1000})
	if err != nil || b.Lease.Epoch != a.Lease.Epoch+1 {
		t.Fatalf("acquire after expiry: %+v, %v", b, err)
	}
	if _, err := n.PublishVersion(ctx, testVersion(1, 1, a.Lease.Epoch)); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale learner publish: %v, want ErrFenced", err)
	}
	if _, err := n.PublishVersion(ctx, testVersion(1, 1, b.Lease.Epoch)); err != nil {
		t.Fatal(err)
	}
}

// TestSnapshotInstallOnJoin compacts the leader's log, then joins a fresh node: it can only catch
// up through the snapshot, and must end with the same state.
func TestSnapshotInstallOnJoin(t *testing.T) {
	small := func(c *Config) { c.SnapshotThreshold = 4 }
	c := newTestCluster(t, 3, time.Now, small)
	ctx := ctxT(t)
	var epoch uint64
	c.onLeader(func(n *Node) error {
		res, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "a", Addr: "a.test:1", Run: testRun("r"), TTLMs: 60_000})
		epoch = res.Lease.Epoch
		return err
	})
	const versions = 30
	for v := uint64(1); v <= versions; v++ {
		c.onLeader(func(n *Node) error {
			_, err := n.PublishVersion(ctx, testVersion(v, v, epoch))
			return err
		})
	}
	lead := c.nodes[c.leader()]
	if err := lead.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}

	_, tr := raft.NewInmemTransport("n4.test:7101")
	c.trans = append(c.trans, tr)
	c.connectAll()
	cfg := fastConfig("n4")
	cfg.RaftAddr, cfg.GRPCAddr = string(tr.LocalAddr()), "n4.test:7001"
	small(&cfg)
	c.nodes = append(c.nodes, c.start(cfg, tr))
	info := NodeInfo{ID: "n4", RaftAddr: cfg.RaftAddr, GRPCAddr: cfg.GRPCAddr}
	for range 2 { // joining twice is a no-op
		c.onLeader(func(n *Node) error {
			_, err := n.Join(ctx, JoinRequest{NodeInfo: info})
			return err
		}, 0, 1, 2)
	}
	c.waitVersions(3, versions)
	if c.nodes[3].raft.Stats()["last_snapshot_index"] == "0" {
		t.Fatal("new node caught up without installing a snapshot")
	}
	waitFor(t, 10*time.Second, "equal states", func() bool {
		return bytes.Equal(snapshotBytes(t, lead.fsm), snapshotBytes(t, c.nodes[3].fsm))
	})
	cs, err := c.nodes[3].ClusterState()
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Members) != 4 || cs.Versions != versions || cs.Learner == nil {
		t.Fatalf("cluster state on the new node: %+v", cs)
	}
	for _, m := range cs.Members {
		if m.GRPCAddr == "" {
			t.Fatalf("member %s without gRPC address", m.ID)
		}
	}
}

func TestJoinValidatesAndNeedsLeader(t *testing.T) {
	c := newTestCluster(t, 3, time.Now, nil)
	ctx := ctxT(t)
	li := c.leader()
	if _, err := c.nodes[li].Join(ctx, JoinRequest{NodeInfo: NodeInfo{ID: "n9", RaftAddr: "nope"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("join with bad address: %v", err)
	}
	_, err := c.nodes[(li+1)%3].Join(ctx, JoinRequest{NodeInfo: NodeInfo{ID: "n9", RaftAddr: "h:1", GRPCAddr: "h:2"}})
	if !errors.Is(err, ErrNotLeader) {
		t.Fatalf("join on a follower: %v", err)
	}
}
