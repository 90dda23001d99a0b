package local

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tsd/learner"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rolloutlog"
)

// The learner's batch shape in these tests: every MCTS rollout is one sample, so an optimizer
// step trains exactly batchRollouts rollouts and a version covers publishEvery steps.
const (
	batchRollouts = 4
	publishEvery  = 2
)

// fixtureFiles are what every process test runs: the tsd binary, a tiny model and easy problems.
type fixtureFiles struct {
	bin, model, problems string
}

var (
	fixtureOnce sync.Once
	fixtureDir  string
	fixtureErr  error
	fixture     fixtureFiles
)

func TestMain(m *testing.M) {
	code := m.Run()
	if fixtureDir != "" {
		os.RemoveAll(fixtureDir)
	}
	os.Exit(code)
}

// files builds tsd once per test binary and makes the model and problems with it. Process tests
// are skipped with -short.
func files(t *testing.T) fixtureFiles {
	t.Helper()
	if testing.Short() {
		t.Skip("builds tsd and starts processes")
	}
	fixtureOnce.Do(func() {
		if fixtureDir, fixtureErr = os.MkdirTemp("", "tsd-local-test-"); fixtureErr != nil {
			return
		}
		f := fixtureFiles{bin: filepath.Join(fixtureDir, "tsd"), model: filepath.Join(fixtureDir, "tiny"),
			problems: filepath.Join(fixtureDir, "easy.jsonl")}
		for _, args := range [][]string{
			{"go", "build", "-o", f.bin, "tsd/cmd/tsd"},
			{f.bin, "init-model", "--preset", "tiny", "--out", f.model},
			{f.bin, "countdown", "gen", "--preset", "easy", "--n", "64", "--out", f.problems},
		} {
			if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
				fixtureErr = fmt.Errorf("%s: %v\n%s", strings.Join(args, " "), err, out)
				return
			}
		}
		fixture = f
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixture
}

// config is a small, fast system: the tiny model, two-simulation searches, batches of
// batchRollouts, a version every publishEvery steps, and a max lag no rollout reaches (so every
// seq an actor sends is admitted and the acked seqs of an actor are exactly 1..last).
func (f fixtureFiles) config(t *testing.T, actorArgs ...string) Config {
	return Config{
		Binary: f.bin, DataDir: t.TempDir(), Model: f.model, Problems: f.problems, Actors: 2, Algo: "mcts",
		BasePort: freeBasePort(t), Progress: time.Second,
		LearnerArgs: []string{"--threads", "1", "--global-batch", strconv.Itoa(batchRollouts), "--micro-batch", "4",
			"--publish-every", strconv.Itoa(publishEvery), "--lr", "1e-3", "--kl-coef", "0", "--sync-log", "--max-lag", "1000000"},
		ActorArgs: append([]string{"--threads", "1", "--prompt-style", "compact", "--wave", "2", "--workers", "2",
			"--iterations", "2", "--step-max-tokens", "8", "--search-max-new-tokens", "24"}, actorArgs...),
	}
}

// freeBasePort finds a base port whose derived ports are all free now: three coordinators (gRPC
// and raft), three learners, four actors. A later process could still take one, which fails the
// test loudly, not silently.
func freeBasePort(t *testing.T) int {
	t.Helper()
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	for range 100 {
		base := 20000 + rng.IntN(30000)
		var ports []int
		for _, off := range []int{0, 1, 2, 100, 101, 102, 200, 201, 202, 300, 301, 302, 303} {
			ports = append(ports, base+off)
		}
		if portsFree(ports) {
			return base
		}
	}
	t.Fatal("no free base port found")
	return 0
}

func portsFree(ports []int) bool {
	var open []net.Listener
	defer func() {
		for _, l := range open {
			l.Close()
		}
	}()
	for _, p := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return false
		}
		open = append(open, l)
	}
	return true
}

// start runs the system; it is stopped, and its logs shown on failure, when the test ends.
func start(t *testing.T, cfg Config) *System {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sys, err := Start(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		showLogs(t, cfg.DataDir)
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sys.Stop()
		if t.Failed() || os.Getenv("TSD_TEST_LOG") != "" {
			showLogs(t, cfg.DataDir)
		}
	})
	return sys
}

// showLogs prints the end of every process's log.
func showLogs(t *testing.T, dataDir string) {
	logs, _ := filepath.Glob(filepath.Join(dataDir, "logs", "*.log"))
	for _, p := range logs {
		b, _ := os.ReadFile(p)
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("--- %s (last lines)\n%s", filepath.Base(p), strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
}

// waitFor polls cond until it holds or timeout passes (process tests have nothing to wait on but
// the processes' observable state; no duration is asserted).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// status asks the learner for its status; nil while it does not answer.
func status(sys *System) *tsdv1.StatusResponse {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := sys.Status(ctx)
	if err != nil {
		return nil
	}
	return st
}

// actorStatus is the learner's view of one connected actor (nil: not connected).
func actorStatus(st *tsdv1.StatusResponse, id string) *tsdv1.ActorStatus {
	for _, a := range st.GetActors() {
		if a.GetActorId() == id {
			return a
		}
	}
	return nil
}

// waitExit waits for p to exit and requires a clean exit.
func waitExit(t *testing.T, p *Proc, timeout time.Duration) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- p.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s exited: %v", p.Name, err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s still running after %v", p.Name, timeout)
	}
}

// running reports whether p has not exited.
func running(p *Proc) bool {
	select {
	case err := <-p.done:
		p.done <- err
		return false
	default:
		return true
	}
}

// finish makes the learner train every rollout it holds and publish the result. Once the actors
// have stopped, the learner trains all whole batches; the rollouts it holds, steps × batch +
// buffer, are then topped up to a whole number of versions by one more actor (padActor), so the
// last step publishes a version that covers everything. Then the learner is stopped cleanly.
func finish(t *testing.T, sys *System, padActor int) *tsdv1.StatusResponse {
	t.Helper()
	var st *tsdv1.StatusResponse
	waitFor(t, 30*time.Second, "the learner to train every whole batch", func() bool {
		st = status(sys)
		return st != nil && st.GetBufferDepth() < batchRollouts
	})
	const perVersion = batchRollouts * publishEvery
	held := st.GetStep()*batchRollouts + st.GetBufferDepth()
	if pad := (perVersion - held%perVersion) % perVersion; pad > 0 {
		p, err := sys.StartActor(padActor, "mcts", "--max-rollouts", strconv.FormatUint(pad, 10))
		if err != nil {
			t.Fatal(err)
		}
		waitExit(t, p, time.Minute)
		held += pad
	}
	waitFor(t, 30*time.Second, fmt.Sprintf("the learner to train and publish all %d rollouts", held), func() bool {
		st = status(sys)
		return st != nil && st.GetStep()*batchRollouts == held && st.GetBufferDepth() == 0 &&
			st.GetVersion()*publishEvery == st.GetStep()
	})
	if err := sys.Learner.Stop(30 * time.Second); err != nil {
		t.Fatalf("learner stop: %v", err)
	}
	return st
}

// checkExactlyOnce compares the stopped learner's ledger (trained.jsonl) with its write-ahead
// log's per-actor highest durable seq: with nothing rejected, an actor's acked rollouts are seqs
// 1..last, and each must be in the ledger exactly once, in steps of batchRollouts. It returns the
// last seqs.
func checkExactlyOnce(t *testing.T, dataDir string) map[string]uint64 {
	t.Helper()
	wal, err := rolloutlog.Open(filepath.Join(dataDir, "learner", "wal"), rolloutlog.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	last := wal.Actors()
	if err := wal.Close(); err != nil {
		t.Fatal(err)
	}
	entries, err := learner.ReadLedger(filepath.Join(dataDir, "learner", "trained.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	type key struct {
		actor string
		seq   uint64
	}
	trained := map[key]int{}
	perStep := map[int64]int{}
	var steps int64
	for _, e := range entries {
		trained[key{e.Actor, e.Seq}]++
		perStep[e.Step]++
		steps = max(steps, e.Step)
	}
	for k, n := range trained {
		switch {
		case n != 1:
			t.Errorf("%s seq %d trained %d times", k.actor, k.seq, n)
		case k.seq == 0 || k.seq > last[k.actor]:
			t.Errorf("%s seq %d trained but never acked (last durable seq %d)", k.actor, k.seq, last[k.actor])
		}
	}
	for actor, n := range last {
		for seq := uint64(1); seq <= n; seq++ {
			if trained[key{actor, seq}] == 0 {
				t.Errorf("%s seq %d acked but never trained", actor, seq)
			}
		}
	}
	for s := int64(1); s <= steps; s++ {
		if perStep[s] != batchRollouts {
			t.Errorf("step %d trained %d rollouts, want %d", s, perStep[s], batchRollouts)
		}
	}
	t.Logf("ledger: %d rollouts in %d steps, exactly once; last acked seqs %v", len(entries), steps, last)
	return last
}
