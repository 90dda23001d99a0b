package coordinator

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// ctxLong bounds a whole join test: it starts and restarts several durable nodes, which on a
// loaded machine under the race detector takes longer than ctxT allows.
func ctxLong(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// members maps each member id to whether it votes, as the answering node sees it.
func members(ctx context.Context, t *testing.T, c *Client) map[string]*tsdv1.ClusterStateResponse_Server {
	t.Helper()
	cs, err := c.ClusterState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*tsdv1.ClusterStateResponse_Server{}
	for _, s := range cs.GetServers() {
		out[s.GetNodeId()] = s
	}
	return out
}

// writable takes the learner lease (again) and publishes the next version through c.
func writable(ctx context.Context, t *testing.T, c *Client, v uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	run := testRun("r")
	acq, err := c.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "a", Addr: "l.test:7201", Run: runToProto(&run), TtlMs: 60_000})
	if err != nil {
		t.Fatalf("acquire: %v", err)
	}
	if _, err := c.PublishVersion(ctx, protoVersion(testVersion(v, v, acq.GetLease().GetEpoch()))); err != nil {
		t.Fatalf("publish %d: %v", v, err)
	}
}

// TestJoinDeadAddressOneNode: a Join naming a raft address where nothing listens leaves a
// one-node cluster writable, also after a restart (the ghost was added as a voter before, and
// the cluster needed it for quorum from then on).
func TestJoinDeadAddressOneNode(t *testing.T) {
	cfg := serviceConfig(t, "n1")
	cfg.Bootstrap = []Peer{{ID: "n1"}}
	s := startService(t, cfg, rpc.Config{}, nil)
	ctx := ctxLong(t)
	cl := dialClient(t, rpc.Config{}, s.GRPCAddr())
	writable(ctx, t, cl, 1)
	res, err := cl.Join(ctx, JoinRequest{NodeInfo: NodeInfo{ID: "ghost", RaftAddr: deadAddr(t), GRPCAddr: deadAddr(t)}})
	if err != nil || res.Voter || res.CatchUpIndex == 0 {
		t.Fatalf("join of a dead address: %+v, %v; want a non-voter told to catch up", res, err)
	}
	writable(ctx, t, cl, 2)
	if m := members(ctx, t, cl); len(m) != 2 || m["ghost"].GetVoter() || !m["n1"].GetVoter() {
		t.Fatalf("members after the join: %v", m)
	}

	cfg.RaftAddr, cfg.GRPCAddr = s.Node().cfg.RaftAddr, s.GRPCAddr()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = startService(t, cfg, rpc.Config{}, nil)
	defer s.Close()
	writable(ctx, t, dialClient(t, rpc.Config{}, s.GRPCAddr()), 3)
}

// TestJoinThreeNodes grows a cluster by joins (each joiner is promoted once caught up), then:
// a Join of a dead address does not count for quorum (one node down, the cluster stays
// writable); a Join reusing a live voter's id with another address is refused with
// AlreadyExists; a node rebuilt under a gone member's id joins only with Replace.
func TestJoinThreeNodes(t *testing.T) {
	c1 := serviceConfig(t, "n1")
	c1.Bootstrap = []Peer{{ID: "n1"}}
	s1 := startService(t, c1, rpc.Config{}, nil)
	defer s1.Close()
	ctx := ctxLong(t)
	cl := dialClient(t, rpc.Config{}, s1.GRPCAddr())
	writable(ctx, t, cl, 1)
	c2 := serviceConfig(t, "n2")
	c2.Join = []string{s1.GRPCAddr()}
	s2 := startService(t, c2, rpc.Config{}, nil)
	defer s2.Close()
	c3 := serviceConfig(t, "n3")
	c3.Join = []string{s1.GRPCAddr()}
	s3 := startService(t, c3, rpc.Config{}, nil)
	for _, s := range []*Service{s2, s3} {
		if !s.Node().IsVoter() {
			t.Fatalf("%s returned from Start without being a voter", s.Node().ID())
		}
	}

	if _, err := cl.Join(ctx, JoinRequest{NodeInfo: NodeInfo{ID: "ghost", RaftAddr: deadAddr(t), GRPCAddr: deadAddr(t)}}); err != nil {
		t.Fatal(err)
	}
	taken := JoinRequest{NodeInfo: NodeInfo{ID: "n2", RaftAddr: deadAddr(t), GRPCAddr: deadAddr(t)}}
	_, err := cl.Join(ctx, taken)
	if status.Code(err) != codes.AlreadyExists || !errors.Is(err, ErrMemberExists) {
		t.Fatalf("join reusing live n2's id: %v, want AlreadyExists", err)
	}
	m := members(ctx, t, cl)
	if len(m) != 4 || !m["n2"].GetVoter() || m["n2"].GetRaftAddr() != s2.Node().cfg.RaftAddr || m["ghost"].GetVoter() {
		t.Fatalf("members: %v", m)
	}

	if err := s3.Close(); err != nil { // n3 is gone for good: two of three voters are left
		t.Fatal(err)
	}
	both := dialClient(t, rpc.Config{}, s1.GRPCAddr(), s2.GRPCAddr())
	writable(ctx, t, both, 2)

	c4 := serviceConfig(t, "n3") // n3 rebuilt on new ports with an empty data dir
	c4.Join = []string{s1.GRPCAddr(), s2.GRPCAddr()}
	if _, err := Start(ctx, c4, rpc.Config{}, nil, testLog()); !errors.Is(err, ErrMemberExists) {
		t.Fatalf("rebuilt n3 without replace: %v, want ErrMemberExists", err)
	}
	c4 = serviceConfig(t, "n3")
	c4.Join, c4.Replace = []string{s1.GRPCAddr(), s2.GRPCAddr()}, true
	s4 := startService(t, c4, rpc.Config{}, nil)
	defer s4.Close()
	m = members(ctx, t, both)
	if len(m) != 4 || !m["n3"].GetVoter() || m["n3"].GetRaftAddr() != s4.Node().cfg.RaftAddr {
		t.Fatalf("members after replacing n3: %v", m)
	}
	writable(ctx, t, both, 3)
}
