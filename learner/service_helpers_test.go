package learner

import (
	"context"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/sugarme/gotch"
	"google.golang.org/grpc"
	"google.golang.org/grpc/test/bufconn"

	"tsd/coordinator"
	"tsd/model"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/tensor/tensortest"
	"tsd/tokenizer"
	"tsd/weights"
)

// Settings of the service under test: small limits so that the bad inputs are cheap to build.
const (
	svcMaxLag    = 2
	svcMaxTokens = 16
	svcCredits   = 4
)

// serviceRig is a real Service (tiny model on disk, one-node raft coordinator in process) served
// by the gRPC adapter over bufconn, as `tsd learner` serves it over TCP.
type serviceRig struct {
	svc   *Service
	node  *testCoordinator
	coord *coordinator.Client
	lis   *bufconn.Listener // nil when serving on rigOptions.listener
	addr  string            // rigOptions.listener's address
	srv   *rpc.Server
	sc    ServiceConfig
	tc    Config
}

// rigOptions adjust a serviceRig: the server's rpc settings and the service config.
type rigOptions struct {
	server rpc.Config
	edit   func(*ServiceConfig)
	train  func(*Config)
	// listener serves on this instead of bufconn (benchmarks use TCP loopback).
	listener net.Listener
	// before runs on the learner's data dir before Open.
	before func(dataDir string)
	// logTo receives the learner's log (nil: discarded).
	logTo io.Writer
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// log is where the rig's learner logs: logTo, or nowhere.
func (o rigOptions) log() *slog.Logger {
	if o.logTo == nil {
		return discardLog()
	}
	return slog.New(slog.NewTextHandler(o.logTo, nil))
}

// writeTinyModel writes the tiny preset (random weights) and its tokenizer into dir.
func writeTinyModel(t testing.TB, dir string) {
	t.Helper()
	tensortest.LockThread(t)
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		t.Fatal(err)
	}
	m, err := model.Init(cfg, 1, model.Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if err := m.Save(dir, gotch.Float); err != nil {
		t.Fatal(err)
	}
}

// testCoordinator is a one-node coordinator on loopback ports fixed at creation, so that it can
// be stopped and started again on its data dir.
type testCoordinator struct {
	cfg coordinator.Config
	svc *coordinator.Service
}

// newTestCoordinator starts a coordinator that runs until the test ends.
func newTestCoordinator(t testing.TB) *testCoordinator {
	t.Helper()
	cfg := coordinator.DefaultConfig()
	cfg.NodeID, cfg.RaftAddr, cfg.GRPCAddr = "n1", freeAddr(t), freeAddr(t)
	cfg.DataDir, cfg.Bootstrap = t.TempDir(), []coordinator.Peer{{ID: "n1"}}
	cfg.HeartbeatTimeout, cfg.ElectionTimeout = 300*time.Millisecond, 300*time.Millisecond
	c := &testCoordinator{cfg: cfg}
	c.start(t)
	t.Cleanup(c.stop)
	return c
}

// freeAddr is a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start starts the node and waits until it leads.
func (c *testCoordinator) start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := coordinator.Start(ctx, c.cfg, rpc.Config{}, nil, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	c.svc = svc
	for !svc.Node().IsLeader() {
		if ctx.Err() != nil {
			t.Fatal("the one-node coordinator elected no leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop shuts the node down (it may be started again).
func (c *testCoordinator) stop() {
	if c.svc != nil {
		c.svc.Close()
		c.svc = nil
	}
}

// client dials the node.
func (c *testCoordinator) client(t testing.TB) *coordinator.Client {
	t.Helper()
	cl, err := coordinator.Dial([]string{c.cfg.GRPCAddr}, rpc.Config{}, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// newServiceRig opens a learner on a fresh data dir (no Run: these tests exercise intake) and
// registers actor "a1" at its coordinator.
func newServiceRig(t testing.TB, o rigOptions) *serviceRig {
	t.Helper()
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	writeTinyModel(t, modelDir)
	node := newTestCoordinator(t)
	coord := node.client(t)
	sc, tc := testServiceConfig(dir, modelDir)
	if o.edit != nil {
		o.edit(&sc)
	}
	if o.train != nil {
		o.train(&tc)
	}
	if o.before != nil {
		o.before(sc.DataDir)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := Open(ctx, sc, tc, coord, o.log())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	if _, err := coord.RegisterActor(ctx, "a1", "", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Served as `tsd learner` serves it: the Weights service on the same server, with its options.
	srv, err := rpc.NewServer(o.server, nil, discardLog(), weights.ServerOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	tsdv1.RegisterLearnerServer(srv, NewGRPC(svc, &CoordinatorDirectory{State: coord.ClusterState, TTL: time.Minute}))
	tsdv1.RegisterWeightsServer(srv, weights.NewServer(svc.Store()))
	srv.SetServing(true, tsdv1.Learner_ServiceDesc.ServiceName)
	r := &serviceRig{svc: svc, node: node, coord: coord, srv: srv, sc: sc, tc: tc}
	lis := o.listener
	if lis == nil {
		r.lis = bufconn.Listen(1 << 20)
		lis = r.lis
	} else {
		r.addr = lis.Addr().String()
	}
	go srv.Serve(lis) //nolint:errcheck // ends with Shutdown
	t.Cleanup(func() { srv.Shutdown(time.Second) })
	return r
}

// testServiceConfig is the rig's learner: small limits, no fsync, no KL, batches of 4 samples.
func testServiceConfig(dir, modelDir string) (ServiceConfig, Config) {
	sc := DefaultServiceConfig()
	sc.ID, sc.Addr, sc.RunID = "learner", "127.0.0.1:7201", "test"
	sc.DataDir, sc.InitModel = filepath.Join(dir, "learner"), modelDir
	sc.MaxLag, sc.MaxCompletionTokens, sc.Credits, sc.SyncLog = svcMaxLag, svcMaxTokens, svcCredits, false
	tc := DefaultConfig()
	tc.KLCoef, tc.GlobalBatch, tc.MicroBatch = 0, 4, 4
	return sc, tc
}

// client dials the rig with the client side of rc.
func (r *serviceRig) client(t testing.TB, rc rpc.Config) tsdv1.LearnerClient {
	t.Helper()
	var conn *grpc.ClientConn
	var err error
	if r.lis == nil {
		conn, err = rpc.Dial(r.addr, rc)
	} else {
		conn, err = rpc.Dial("passthrough:///bufnet", rc, grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) {
			return r.lis.DialContext(ctx)
		}))
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return tsdv1.NewLearnerClient(conn)
}

// goodRollout is a well-formed MCTS rollout of actor a1 at the learner's current version.
func (r *serviceRig) goodRollout(seq uint64) *tsdv1.Rollout {
	return &tsdv1.Rollout{
		ActorId: "a1", Seq: seq, PolicyVersion: r.svc.Ingest().Version(), PromptId: "p", PromptIds: []int32{1, 2, 3},
		Algo: tsdv1.Algo_ALGO_MCTS,
		Samples: []*tsdv1.Sample{{
			CompletionIds: []int32{4, 5, 6}, Logprobs: []float32{-1, -0.5, -2}, Values: []float32{0.1, 0.2, 0.3},
			StepEnds: []int32{3}, Reward: 0.5, Finished: true,
		}},
	}
}

// stream opens a rollout stream and says Hello as actor; it returns the Hello reply.
func stream(ctx context.Context, t testing.TB, c tsdv1.LearnerClient, actor string) (tsdv1.Learner_StreamRolloutsClient, *tsdv1.RolloutAck) {
	t.Helper()
	s, err := c.StreamRollouts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Send(hello(actor)); err != nil {
		t.Fatal(err)
	}
	reply, err := s.Recv()
	if err != nil {
		t.Fatalf("hello as %q: %v", actor, err)
	}
	return s, reply
}

func hello(actor string) *tsdv1.RolloutUpload {
	return &tsdv1.RolloutUpload{Msg: &tsdv1.RolloutUpload_Hello{Hello: &tsdv1.Hello{ActorId: actor}}}
}

func upload(r *tsdv1.Rollout) *tsdv1.RolloutUpload {
	return &tsdv1.RolloutUpload{Msg: &tsdv1.RolloutUpload_Rollout{Rollout: r}}
}

// exchange sends r and returns its ack.
func exchange(t testing.TB, s tsdv1.Learner_StreamRolloutsClient, r *tsdv1.Rollout) *tsdv1.RolloutAck {
	t.Helper()
	if err := s.Send(upload(r)); err != nil {
		t.Fatal(err)
	}
	a, err := s.Recv()
	if err != nil {
		t.Fatalf("ack of seq %d: %v", r.GetSeq(), err)
	}
	if a.GetSeq() != r.GetSeq() {
		t.Fatalf("ack for seq %d, sent %d", a.GetSeq(), r.GetSeq())
	}
	return a
}

func ctxFor(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
