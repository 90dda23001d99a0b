package coordinator

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// bufServer serves n over an in-memory connection with the server side of rc.
type bufServer struct {
	lis *bufconn.Listener
}

func serveBuf(t *testing.T, n *Node, rc rpc.Config) *bufServer {
	t.Helper()
	srv, err := rpc.NewServer(rc, prometheus.NewRegistry(), testLog())
	if err != nil {
		t.Fatal(err)
	}
	adapter := NewGRPCServer(n, func(string) (*grpc.ClientConn, error) { return nil, errors.New("no forwarding in this test") }, testLog())
	tsdv1.RegisterCoordinatorServer(srv, adapter)
	srv.SetServing(true, tsdv1.Coordinator_ServiceDesc.ServiceName)
	lis := bufconn.Listen(1 << 20)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Shutdown(time.Second); _ = adapter.Close() })
	return &bufServer{lis: lis}
}

// dial connects with the client side of rc.
func (b *bufServer) dial(rc rpc.Config) func(string) (*grpc.ClientConn, error) {
	return func(string) (*grpc.ClientConn, error) {
		opts, err := rpc.DialOptions(rc)
		if err != nil {
			return nil, err
		}
		opts = append(opts, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return b.lis.DialContext(ctx)
		}))
		return grpc.NewClient("passthrough:///bufnet", opts...)
	}
}

func (b *bufServer) client(t *testing.T, rc rpc.Config) *Client {
	t.Helper()
	c, err := NewClient([]string{"bufnet"}, b.dial(rc), testLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func protoVersion(v Version) *tsdv1.PolicyVersion { return versionToProto(&v) }

// TestBadInputCodes sends each kind of bad request through gRPC and checks its status code and
// that errors.Is still finds the reason on the client side.
func TestBadInputCodes(t *testing.T) {
	c := newTestCluster(t, 1, time.Now, nil)
	c.leader()
	rc := rpc.Config{Token: "tok", MaxMsgBytes: 256 << 10}
	srv := serveBuf(t, c.nodes[0], rc)
	cl := srv.client(t, rc)
	ctx := ctxT(t)

	run := testRun("r")
	pr := runToProto(&run)
	var epoch uint64
	for range 2 { // the second grant fences the first: epoch 1 is stale
		lease, err := cl.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "a", Addr: "a.test:1", Run: pr, TtlMs: 60_000})
		if err != nil {
			t.Fatal(err)
		}
		epoch = lease.GetLease().GetEpoch()
	}
	if _, err := cl.PublishVersion(ctx, protoVersion(testVersion(1, 8, epoch))); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RegisterActor(ctx, "x", "x.test:1", time.Minute); err != nil {
		t.Fatal(err)
	}
	other := testRun("other")
	badDigest := testVersion(2, 16, epoch)
	badDigest.SHA256 = "xyz"
	acq := func(id string, run *tsdv1.RunConfig, ttl int64) func() error {
		return func() error {
			_, err := cl.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: id, Addr: id + ".test:1", Run: run, TtlMs: ttl})
			return err
		}
	}
	pub := func(v *tsdv1.PolicyVersion) func() error {
		return func() error { _, err := cl.PublishVersion(ctx, v); return err }
	}
	huge := &tsdv1.RunConfig{RunId: "r", ConfigSha256: run.ConfigSHA256, ConfigJson: make([]byte, 300<<10)}
	for _, tc := range []struct {
		name   string
		call   func() error
		code   codes.Code
		reason error // nil: no coordinator reason (refused by gRPC itself)
	}{
		{"acquire without run", acq("b", nil, 1000), codes.InvalidArgument, ErrInvalid},
		{"acquire with bad digest", acq("b", &tsdv1.RunConfig{RunId: "r", ConfigSha256: "00"}, 1000), codes.InvalidArgument, ErrInvalid},
		{"acquire negative ttl", acq("b", pr, -5), codes.InvalidArgument, ErrInvalid},
		{"acquire ttl over an hour", acq("b", pr, 2*time.Hour.Milliseconds()), codes.InvalidArgument, ErrInvalid},
		{"second learner", acq("b", pr, 1000), codes.FailedPrecondition, ErrLeaseHeld},
		{"other run config", acq("b", runToProto(&other), 1000), codes.FailedPrecondition, ErrConfigMismatch},
		{"oversized request", acq("b", huge, 1000), codes.ResourceExhausted, nil},
		{"renew stale epoch", func() error { _, err := cl.RenewLearnerLease(ctx, "a", epoch+1, time.Second); return err }, codes.FailedPrecondition, ErrFenced},
		{"publish nothing", pub(nil), codes.InvalidArgument, ErrInvalid},
		{"publish stale epoch", pub(protoVersion(testVersion(2, 16, epoch-1))), codes.FailedPrecondition, ErrFenced},
		{"publish skipping", pub(protoVersion(testVersion(3, 16, epoch))), codes.FailedPrecondition, ErrVersionOrder},
		{"publish bad digest", pub(protoVersion(badDigest)), codes.InvalidArgument, ErrInvalid},
		{"get unknown version", func() error { _, err := cl.GetVersion(ctx, 9); return err }, codes.NotFound, ErrUnknownVersion},
		{"heartbeat unknown actor", func() error { _, err := cl.Heartbeat(ctx, "nobody", 0, time.Second); return err }, codes.NotFound, ErrUnknownActor},
		{"heartbeat future version", func() error { _, err := cl.Heartbeat(ctx, "x", 5, time.Second); return err }, codes.NotFound, ErrUnknownVersion},
		{"weights of unknown version", func() error { _, err := cl.WeightSource(ctx, "x", 4); return err }, codes.NotFound, ErrUnknownVersion},
		{"register bad addr", func() error { _, err := cl.RegisterActor(ctx, "y", "nohost", time.Second); return err }, codes.InvalidArgument, ErrInvalid},
		{"deregister no id", func() error { return cl.DeregisterActor(ctx, "") }, codes.InvalidArgument, ErrInvalid},
		{"join bad addr", func() error {
			_, err := cl.Join(ctx, JoinRequest{NodeInfo: NodeInfo{ID: "n9", RaftAddr: "x", GRPCAddr: "y:1"}})
			return err
		}, codes.InvalidArgument, ErrInvalid},
		{"no token", func() error { _, err := srv.client(t, rpc.Config{}).ClusterState(ctx); return err }, codes.Unauthenticated, nil},
		{"wrong token", func() error { _, err := srv.client(t, rpc.Config{Token: "tok2"}).ClusterState(ctx); return err }, codes.Unauthenticated, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if got := status.Code(err); got != tc.code {
				t.Fatalf("code %v (%v), want %v", got, err, tc.code)
			}
			if tc.reason != nil && !errors.Is(err, tc.reason) {
				t.Fatalf("%v does not match %v", err, tc.reason)
			}
		})
	}
	// Nothing else was affected: the run still has one version from learner a.
	cs, err := cl.ClusterState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cs.GetVersions() != 1 || cs.GetLearner().GetLearnerId() != "a" || cs.GetLearner().GetEpoch() != epoch || len(cs.GetActors()) != 1 {
		t.Fatalf("state after bad input: %v", cs)
	}
}

func TestGRPCHappyPath(t *testing.T) {
	c := newTestCluster(t, 1, time.Now, nil)
	c.leader()
	srv := serveBuf(t, c.nodes[0], rpc.Config{})
	cl := srv.client(t, rpc.Config{})
	ctx := ctxT(t)
	run := testRun("r")
	acq, err := cl.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "a", Addr: "l.test:7201", Run: runToProto(&run)})
	if err != nil {
		t.Fatal(err)
	}
	epoch := acq.GetLease().GetEpoch()
	if acq.GetLatest() != nil || epoch != 1 || acq.GetLease().GetExpiresUnixMs() <= time.Now().UnixMilli() {
		t.Fatalf("acquire with the default ttl: %v", acq)
	}

	got := make(chan uint64, 10)
	watchCtx, stop := context.WithCancel(ctx)
	watchDone := make(chan error, 1)
	go func() {
		watchDone <- cl.WatchVersions(watchCtx, 0, func(v *tsdv1.PolicyVersion) error {
			got <- v.GetVersion()
			return nil
		})
	}()
	for v := uint64(1); v <= 3; v++ {
		idx, err := cl.PublishVersion(ctx, protoVersion(testVersion(v, 8*v, epoch)))
		if err != nil || idx == 0 {
			t.Fatalf("publish %d: index %d, %v", v, idx, err)
		}
	}
	for want := uint64(1); want <= 3; want++ {
		select {
		case v := <-got:
			if v != want {
				t.Fatalf("watch delivered %d, want %d", v, want)
			}
		case <-ctx.Done():
			t.Fatal("watch delivered nothing")
		}
	}
	stop()
	if err := <-watchDone; !errors.Is(err, context.Canceled) {
		t.Fatalf("watch ended with %v", err)
	}

	latest, err := cl.GetVersion(ctx, 0)
	if err != nil || latest.GetVersion() != 3 || latest.GetLearnerEpoch() != epoch {
		t.Fatalf("latest: %v, %v", latest, err)
	}
	reg, err := cl.RegisterActor(ctx, "x", "x.test:7301", 0)
	if err != nil || reg.GetLatest().GetVersion() != 3 || reg.GetLearner().GetAddr() != "l.test:7201" || reg.GetRun().GetConfigSha256() != run.ConfigSHA256 {
		t.Fatalf("register: %v, %v", reg, err)
	}
	if _, err := cl.RegisterActor(ctx, "y", "", 0); err != nil {
		t.Fatal(err)
	}
	hb, err := cl.Heartbeat(ctx, "x", 3, 0)
	if err != nil || hb.GetLatestVersion() != 3 {
		t.Fatalf("heartbeat: %v, %v", hb, err)
	}
	addrs, err := cl.WeightSource(ctx, "y", 3)
	if err != nil || !slices.Equal(addrs, []string{"x.test:7301", "l.test:7201"}) {
		t.Fatalf("weight source: %v, %v", addrs, err)
	}
	cs, err := cl.ClusterState(ctx)
	if err != nil || len(cs.GetServers()) != 1 || !cs.GetServers()[0].GetLeader() || cs.GetServers()[0].GetGrpcAddr() == "" ||
		len(cs.GetActors()) != 2 || cs.GetActors()[0].GetHeldVersion() != 3 || cs.GetLatest().GetVersion() != 3 {
		t.Fatalf("cluster state: %v, %v", cs, err)
	}
	if err := cl.DeregisterActor(ctx, "y"); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.RenewLearnerLease(ctx, "a", epoch, time.Minute); err != nil {
		t.Fatal(err)
	}

	cc, err := srv.dial(rpc.Config{})("")
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	h, err := healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{Service: tsdv1.Coordinator_ServiceDesc.ServiceName})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health: %v, %v", h, err)
	}
}

func TestToStatusMapsEveryReason(t *testing.T) {
	for _, r := range reasons {
		st := status.Convert(toStatus(errors.Join(r.err, errors.New("context"))))
		if st.Code() == codes.Internal || st.Code() == codes.OK {
			t.Errorf("%v maps to %v", r.err, st.Code())
		}
		if back := fromStatus(st.Err()); !errors.Is(back, r.err) {
			t.Errorf("%s does not come back as its sentinel: %v", r.reason, back)
		}
	}
	if got := status.Code(toStatus(errors.New("surprise"))); got != codes.Internal {
		t.Errorf("unknown error maps to %v", got)
	}
	if got := status.Code(toStatus(context.DeadlineExceeded)); got != codes.DeadlineExceeded {
		t.Errorf("deadline maps to %v", got)
	}
}
