package coordinator

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/rpc/rpctest"
)

// serviceConfig is a durable node on loopback ports chosen by the kernel, with fast elections.
func serviceConfig(t *testing.T, id string) Config {
	cfg := fastConfig(id)
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 200*time.Millisecond, 200*time.Millisecond
	cfg.RaftAddr, cfg.GRPCAddr = "127.0.0.1:0", "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), id)
	return cfg
}

func startService(t *testing.T, cfg Config, rc rpc.Config, reg prometheus.Registerer) *Service {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := Start(ctx, cfg, rc, reg, testLog())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func dialClient(t *testing.T, rc rpc.Config, addrs ...string) *Client {
	t.Helper()
	c, err := Dial(addrs, rc, testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// TestServiceJoinForwardAndFailover grows a cluster from one bootstrapped node by joins (one
// through a follower), sends writes only to followers (forwarded), stops the leader, and checks
// that publishing and a running watch carry on. Every connection, forwarding included, uses
// mutual TLS and the bearer token.
func TestServiceJoinForwardAndFailover(t *testing.T) {
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "coordinator")
	rc := rpc.Config{Token: "t0k", TLSCert: cert, TLSKey: key, TLSCA: ca.CertFile}
	c1 := serviceConfig(t, "n1")
	c1.Bootstrap = []Peer{{ID: "n1"}}
	s1 := startService(t, c1, rc, nil)
	c2 := serviceConfig(t, "n2")
	c2.Join = []string{s1.GRPCAddr()}
	regs := []*prometheus.Registry{prometheus.NewRegistry(), prometheus.NewRegistry()}
	s2 := startService(t, c2, rc, regs[0])
	c3 := serviceConfig(t, "n3")
	c3.Join = []string{s2.GRPCAddr()} // a follower: forwarded to n1
	s3 := startService(t, c3, rc, regs[1])
	services := []*Service{s1, s2, s3}
	defer func() {
		for _, s := range services[1:] {
			_ = s.Close()
		}
	}()
	ctx := ctxT(t)

	followers := dialClient(t, rc, s2.GRPCAddr(), s3.GRPCAddr())
	cs, err := followers.ClusterState(ctx)
	if err != nil || len(cs.GetServers()) != 3 || cs.GetLeaderId() != "n1" {
		t.Fatalf("cluster after joins: %v, %v", cs, err)
	}
	plain := rc
	plain.TLSCA = "" // --tls-cert and --tls-key without --tls-ca: would dial in plaintext
	if _, err := Dial([]string{s2.GRPCAddr()}, plain, testLog()); !errors.Is(err, rpc.ErrConfig) || !strings.Contains(err.Error(), "--tls-ca") {
		t.Fatalf("client with a certificate but no CA: %v, want rpc.ErrConfig naming --tls-ca", err)
	}
	run := testRun("r")
	acq, err := followers.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "a", Addr: "l.test:7201", Run: runToProto(&run), TtlMs: 60_000})
	if err != nil {
		t.Fatal(err)
	}
	epoch := acq.GetLease().GetEpoch()
	if _, err := followers.PublishVersion(ctx, protoVersion(testVersion(1, 8, epoch))); err != nil {
		t.Fatal(err)
	}
	forwarded := testutil.ToFloat64(s2.Node().metrics.forwarded.WithLabelValues("PublishVersion")) +
		testutil.ToFloat64(s3.Node().metrics.forwarded.WithLabelValues("PublishVersion"))
	if forwarded != 1 {
		t.Fatalf("forwarded publishes: %v, want 1", forwarded)
	}

	all := dialClient(t, rc, s1.GRPCAddr(), s2.GRPCAddr(), s3.GRPCAddr())
	seen := make(chan uint64, 16)
	go func() {
		_ = dialClient(t, rc, s1.GRPCAddr(), s2.GRPCAddr(), s3.GRPCAddr()).WatchVersions(ctx, 0, func(v *tsdv1.PolicyVersion) error {
			seen <- v.GetVersion()
			return nil
		})
	}()
	expect := func(want uint64) {
		t.Helper()
		select {
		case v := <-seen:
			if v != want {
				t.Fatalf("watch delivered %d, want %d", v, want)
			}
		case <-ctx.Done():
			t.Fatalf("watch did not deliver %d", want)
		}
	}
	expect(1)

	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	for v := uint64(2); v <= 4; v++ {
		if _, err := all.PublishVersion(ctx, protoVersion(testVersion(v, 8*v, epoch))); err != nil {
			t.Fatalf("publish %d after the leader stopped: %v", v, err)
		}
		expect(v)
	}
	// A follower's reads lag its leader by the replication delay: wait for it.
	waitFor(t, 10*time.Second, "the answering node to apply version 4", func() bool {
		cs, err = all.ClusterState(ctx)
		return err == nil && cs.GetVersions() == 4
	})
	if id := cs.GetLeaderId(); id == "n1" || id == "" {
		t.Fatalf("after fail-over the leader is %q", id)
	}
}

// TestServiceRestart stops a single durable node and starts it again on the same data dir: the
// state comes back from the file snapshot plus the boltdb log after it.
func TestServiceRestart(t *testing.T) {
	cfg := serviceConfig(t, "n1")
	cfg.Bootstrap = []Peer{{ID: "n1"}}
	s := startService(t, cfg, rpc.Config{}, nil)
	ctx := ctxT(t)
	cl := dialClient(t, rpc.Config{}, s.GRPCAddr())
	run := testRun("r")
	acq, err := cl.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "a", Addr: "l.test:7201", Run: runToProto(&run)})
	if err != nil {
		t.Fatal(err)
	}
	epoch := acq.GetLease().GetEpoch()
	publish := func(cl *Client, v uint64) {
		t.Helper()
		if _, err := cl.PublishVersion(ctx, protoVersion(testVersion(v, v, epoch))); err != nil {
			t.Fatalf("publish %d: %v", v, err)
		}
	}
	publish(cl, 1)
	publish(cl, 2)
	if err := s.Node().raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	publish(cl, 3)
	before := snapshotBytes(t, s.Node().fsm)
	if err := s.Close(); err != nil { // s is reassigned below; close this one now
		t.Fatal(err)
	}

	// Same data dir and, as in production, the same addresses; bootstrap is skipped.
	cfg.RaftAddr, cfg.GRPCAddr = s.Node().cfg.RaftAddr, s.GRPCAddr()
	s = startService(t, cfg, rpc.Config{}, nil)
	defer s.Close()
	if !s.Node().HasState() {
		t.Fatal("restarted node found no raft state")
	}
	cl = dialClient(t, rpc.Config{}, s.GRPCAddr())
	waitFor(t, 10*time.Second, "replay", func() bool {
		v, err := s.Node().Version(0)
		return err == nil && v.Version == 3
	})
	if after := snapshotBytes(t, s.Node().fsm); string(after) != string(before) {
		t.Fatalf("state after restart differs:\n%s\n%s", before, after)
	}
	publish(cl, 4)
}

func TestServiceRefusesBadStarts(t *testing.T) {
	ctx := ctxT(t)
	cfg := serviceConfig(t, "n1")
	if _, err := Start(ctx, cfg, rpc.Config{}, nil, testLog()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("new node with neither bootstrap nor join: %v", err)
	}
	cfg = serviceConfig(t, "n1")
	cfg.Bootstrap = []Peer{{ID: "n1"}}
	s := startService(t, cfg, rpc.Config{}, nil)
	defer s.Close()
	again := cfg
	again.GRPCAddr = "127.0.0.1:0"
	if _, err := Start(ctx, again, rpc.Config{}, nil, testLog()); err == nil {
		t.Fatal("second node on the same data dir started")
	}
	bad := serviceConfig(t, "n2")
	bad.Bootstrap = []Peer{{ID: "n2"}}
	if _, err := Start(ctx, bad, rpc.Config{TLSCert: "only-cert.pem"}, nil, testLog()); !errors.Is(err, rpc.ErrConfig) {
		t.Fatalf("bad rpc config: %v", err)
	}
	if _, err := Start(ctx, bad, rpc.Config{TLSCert: "c.pem", TLSKey: "k.pem"}, nil, testLog()); !errors.Is(err, ErrInvalid) {
		t.Fatalf("TLS without a CA to dial peers: %v", err)
	}
}
