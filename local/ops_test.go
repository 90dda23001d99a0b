package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"

	"tsd/coordinator"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/weights"
)

// TestLearnerSurvivesQuorumOutage: the only coordinator is frozen (SIGSTOP) three times for
// longer than the learner's lease. Each time the lease lapses with nobody else to take it; the
// learner must renew it and go on publishing (a lapsed lease is not a lost one), versions stay
// 1, 2, 3, … with one digest each, and every acked rollout is trained exactly once.
func TestLearnerSurvivesQuorumOutage(t *testing.T) {
	f := files(t)
	const ttl = 2 * time.Second
	cfg := f.config(t)
	cfg.LearnerArgs = append(cfg.LearnerArgs, "--lease-ttl", ttl.String())
	sys := start(t, cfg)
	versions := watchVersions(t, cfg.CoordinatorAddrs())
	coord := sys.Coordinators[0]
	t.Cleanup(func() { coord.cmd.Process.Signal(syscall.SIGCONT) }) //nolint:errcheck // may have exited

	for outage := 1; outage <= 3; outage++ {
		var before uint64
		waitFor(t, time.Minute, "a published version", func() bool {
			before = status(sys).GetVersion()
			return before > 0
		})
		if err := coord.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		time.Sleep(ttl + 3*time.Second)
		if err := coord.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		waitFor(t, time.Minute, "two more versions after the outage", func() bool {
			if !running(sys.Learner) {
				t.Fatalf("the learner exited after outage %d", outage)
			}
			return status(sys).GetVersion() >= before+2
		})
		t.Logf("outage %d of %v (lease %v): the learner was at version %d and went on to %d", outage, ttl+3*time.Second, ttl, before, status(sys).GetVersion())
	}
	for _, p := range sys.Actors {
		if err := p.Stop(10 * time.Second); err != nil {
			t.Fatalf("%s stop: %v", p.Name, err)
		}
	}
	final := finish(t, sys, 2)
	checkExactlyOnce(t, cfg.DataDir)
	checkWatchedVersions(t, cfg.CoordinatorAddrs(), final.GetVersion(), versions)
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "logs", "learner.log")); err == nil {
		// Which of the two paths renewed the lapsed lease after each outage depends on which
		// request the thawed coordinator applies first: the learner's periodic renewal, or its
		// publish (LEASE_EXPIRED, then a renewal: this line). TestPublishRenewsLapsedLease in
		// learner forces the second.
		t.Logf("publishes that found the lease lapsed: %d", strings.Count(string(b), "lease lapsed"))
	}
}

// TestActorKeepsVersions: with a version published at every learner step, each actor keeps at
// most --keep-versions of them on disk, plus the one it has loaded (when that is older).
func TestActorKeepsVersions(t *testing.T) {
	f := files(t)
	const keep = 2
	cfg := f.config(t, "--keep-versions", strconv.Itoa(keep))
	cfg.LearnerArgs = append(cfg.LearnerArgs, "--publish-every", "1")
	sys := start(t, cfg)
	most := map[string]int{}
	waitFor(t, 2*time.Minute, "version 10", func() bool {
		for _, p := range sys.Actors {
			if !running(p) {
				t.Fatalf("%s exited", p.Name)
			}
		}
		for i := range cfg.Actors {
			name := "actor-" + strconv.Itoa(i)
			held, _ := filepath.Glob(filepath.Join(cfg.DataDir, name, "versions", "v*.manifest.json"))
			most[name] = max(most[name], len(held))
		}
		return status(sys).GetVersion() >= 10
	})
	for name, n := range most {
		t.Logf("%s: at most %d versions on disk", name, n)
		if n > keep+1 {
			t.Errorf("%s held %d versions at once, want at most %d", name, n, keep+1)
		}
	}
}

// TestFreshActorWithCorruptPeers is defect 9 with real processes: the learner publishes a
// version at every step and keeps only the newest; three peers that corrupt every chunk they
// relay are registered as holding the newest version, so the coordinator lists them before the
// learner. A fresh actor must get weights anyway (moving to a newer version when the one it
// chose is pruned), ask each corrupt peer at most once per version, and produce rollouts.
func TestFreshActorWithCorruptPeers(t *testing.T) {
	f := files(t)
	cfg := f.config(t)
	cfg.Actors = 1
	cfg.LearnerArgs = append(cfg.LearnerArgs, "--publish-every", "1", "--keep-versions", "1")
	sys := start(t, cfg)
	coord, err := coordinator.Dial(strings.Split(cfg.CoordinatorAddrs(), ","), rpc.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { coord.Close() })
	conn, err := rpc.Dial(cfg.LearnerAddr(), rpc.Config{}, weights.DialOptions()...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for i := range 3 {
		addr := serveCorruptPeer(t, tsdv1.NewWeightsClient(conn))
		id := fmt.Sprintf("a-corrupt-%d", i) // sorts before actor-0 among the holders
		if _, err := coord.RegisterActor(ctx, id, addr, 10*time.Second); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() { // claim the newest version, always
			defer wg.Done()
			for ctx.Err() == nil {
				if v, err := coord.GetVersion(ctx, 0); err == nil {
					coord.Heartbeat(ctx, id, v.GetVersion(), 10*time.Second) //nolint:errcheck // the next beat retries
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	}
	waitFor(t, time.Minute, "version 3", func() bool { return status(sys).GetVersion() >= 3 })
	fresh, err := sys.StartActor(1, "mcts")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, time.Minute, "rollouts from the fresh actor", func() bool {
		if !running(fresh) {
			t.Fatalf("the fresh actor exited: %v", fresh.Wait())
		}
		return actorStatus(status(sys), "actor-1").GetRollouts() > 0
	})
	b, err := os.ReadFile(filepath.Join(cfg.DataDir, "logs", "actor-1.log"))
	if err != nil {
		t.Fatal(err)
	}
	warned := map[string]int{} // "source version N" → WARN lines
	moved := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, "fetching the newest instead") {
			moved++
		}
		if !strings.Contains(line, "not asking it again") {
			continue
		}
		var source, version string
		for _, field := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(field, "source="); ok {
				source = v
			}
		}
		if _, after, ok := strings.Cut(line, "version "); ok {
			version = strings.Fields(after)[0]
		}
		warned[source+" version "+version]++
	}
	if len(warned) == 0 {
		t.Errorf("the fresh actor reported no corrupt source:\n%s", b)
	}
	for k, n := range warned {
		if n != 1 {
			t.Errorf("%s: %d corrupt-source warnings, want 1 (asked once)", k, n)
		}
	}
	t.Logf("corrupt sources reported once each: %v; moved to a newer version %d times", warned, moved)
}

// serveCorruptPeer serves the Weights service on loopback as a peer with bad memory would: it
// relays the learner's stream with one byte of every chunk flipped (the chunk's CRC-32C left as
// the learner computed it). It returns the address.
func serveCorruptPeer(t *testing.T, learner tsdv1.WeightsClient) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	tsdv1.RegisterWeightsServer(gs, &corruptPeer{learner: learner})
	go gs.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(gs.Stop)
	return lis.Addr().String()
}

type corruptPeer struct {
	tsdv1.UnimplementedWeightsServer
	learner tsdv1.WeightsClient
}

func (p *corruptPeer) Fetch(req *tsdv1.FetchRequest, out grpc.ServerStreamingServer[tsdv1.WeightMessage]) error {
	in, err := p.learner.Fetch(out.Context(), req)
	if err != nil {
		return err
	}
	for {
		m, err := in.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if c := m.GetChunk(); len(c.GetData()) > 0 {
			c.Data[0] ^= 0xff
		}
		if err := out.Send(m); err != nil {
			return err
		}
	}
}
