package local

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"tsd/coordinator"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// TestActorKillExactlyOnce: an actor is killed with SIGKILL
// while it streams, and restarted with the same id; every rollout the learner acked is trained
// exactly once and none is lost.
func TestActorKillExactlyOnce(t *testing.T) {
	f := files(t)
	const perActor = 16
	cfg := f.config(t, "--max-rollouts", strconv.Itoa(perActor))
	sys := start(t, cfg)

	var before uint64
	waitFor(t, 30*time.Second, "actor-0's first acked rollouts", func() bool {
		before = actorStatus(status(sys), "actor-0").GetRollouts()
		return before >= 3
	})
	victim := sys.Actors[0]
	if err := victim.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := victim.Wait(); err == nil {
		t.Fatal("the killed actor exited cleanly")
	}
	t.Logf("killed actor-0 after %d acked rollouts", before)
	if _, err := sys.StartActor(0, "mcts"); err != nil {
		t.Fatal(err)
	}
	for _, p := range sys.Actors {
		waitExit(t, p, time.Minute)
	}

	st := finish(t, sys, 2)
	if len(st.GetRejected()) > 0 {
		t.Fatalf("rejections %v: the test's acked set would have gaps", st.GetRejected())
	}
	last := checkExactlyOnce(t, cfg.DataDir)
	// actor-1 ran undisturbed; the restarted actor-0 continued after what the learner held (a
	// restart from seq 1 would have had its first rollouts dropped as duplicates).
	if last["actor-1"] != perActor {
		t.Errorf("actor-1: last acked seq %d, want %d", last["actor-1"], perActor)
	}
	if last["actor-0"] < perActor+before {
		t.Errorf("actor-0: last acked seq %d, want ≥ %d before the kill + %d after", last["actor-0"], before, perActor)
	}
}

// TestLearnerKillResume: the learner is killed with SIGKILL
// mid-run and restarted on its data dir. It resumes from its checkpoint and write-ahead log, the
// coordinator's versions continue 1, 2, 3, … with no gap and no second digest for a version, the
// actors reconnect by themselves, and every acked rollout is trained exactly once.
func TestLearnerKillResume(t *testing.T) {
	f := files(t)
	cfg := f.config(t)
	sys := start(t, cfg)
	versions := watchVersions(t, cfg.CoordinatorAddrs())

	// Kill it one step past a checkpoint, so that a step's ledger lines are erased with it and its
	// rollouts are trained again from the write-ahead log. (Status answers in a millisecond; the
	// next checkpoint takes far longer, so the kill lands before it.)
	var st *tsdv1.StatusResponse
	waitFor(t, 30*time.Second, "a step past the second version's checkpoint", func() bool {
		st = status(sys)
		return st.GetVersion() >= 2 && st.GetStep()%publishEvery != 0
	})
	if err := sys.Learner.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := sys.Learner.Wait(); err == nil {
		t.Fatal("the killed learner exited cleanly")
	}
	killedAt, killedStep := st.GetVersion(), st.GetStep()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := sys.RestartLearner(ctx); err != nil {
		t.Fatal(err)
	}
	step, version := resumedAt(t, cfg.DataDir)
	t.Logf("killed the learner at step %d, version %d; it resumed at step %d, version %d", killedStep, killedAt, step, version)
	if version != killedAt || step != killedAt*publishEvery || step >= killedStep {
		t.Fatalf("resumed at step %d version %d, want the checkpoint of version %d (step %d)", step, version, killedAt, killedAt*publishEvery)
	}

	waitFor(t, time.Minute, "both actors streaming to the restarted learner, and two more versions", func() bool {
		st = status(sys)
		return actorStatus(st, "actor-0").GetRollouts() > 0 && actorStatus(st, "actor-1").GetRollouts() > 0 &&
			st.GetVersion() >= killedAt+2
	})
	for _, p := range sys.Actors {
		if !running(p) {
			t.Fatalf("%s exited while the learner was down", p.Name)
		}
		if err := p.Stop(10 * time.Second); err != nil {
			t.Fatalf("%s stop: %v", p.Name, err)
		}
	}

	final := finish(t, sys, 2)
	checkExactlyOnce(t, cfg.DataDir)
	seen := checkWatchedVersions(t, cfg.CoordinatorAddrs(), final.GetVersion(), versions)
	for i, v := range seen {
		if i > 0 && v.GetStep() <= seen[i-1].GetStep() {
			t.Errorf("version %d at step %d, not after version %d's step %d", v.GetVersion(), v.GetStep(), i, seen[i-1].GetStep())
		}
	}
	if uint64(len(seen)) != final.GetVersion() {
		t.Errorf("coordinator has %d versions, the learner ended at %d", len(seen), final.GetVersion())
	}
}

// resumedAt reads the step and version the learner's last "resumed" log line names (the status
// has moved on by the time it answers: the restarted learner trains its buffer at once).
func resumedAt(t *testing.T, dataDir string) (step, version uint64) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "logs", "learner.log"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, "msg=resumed ") {
			continue
		}
		found = true
		for _, field := range strings.Fields(line) {
			k, v, _ := strings.Cut(field, "=")
			switch k {
			case "step":
				step, err = strconv.ParseUint(v, 10, 64)
			case "version":
				version, err = strconv.ParseUint(v, 10, 64)
			}
			if err != nil {
				t.Fatalf("learner log line %q: %v", line, err)
			}
		}
	}
	if !found {
		t.Fatal("the restarted learner logged no resume")
	}
	return step, version
}

// watchVersions follows the coordinator's versions from the first, in the background, until the
// test ends; the returned function lists those delivered so far.
func watchVersions(t *testing.T, addrs string) func() []*tsdv1.PolicyVersion {
	t.Helper()
	c, err := coordinator.Dial(strings.Split(addrs, ","), rpc.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu   sync.Mutex
		seen []*tsdv1.PolicyVersion
		wg   sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		c.WatchVersions(ctx, 0, func(v *tsdv1.PolicyVersion) error { //nolint:errcheck // ends with the test
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, v)
			return nil
		})
	}()
	t.Cleanup(func() { cancel(); wg.Wait(); c.Close() })
	return func() []*tsdv1.PolicyVersion {
		mu.Lock()
		defer mu.Unlock()
		return append([]*tsdv1.PolicyVersion(nil), seen...)
	}
}

// checkWatchedVersions waits until the watch has delivered version last, then requires the watched
// versions to be 1, 2, 3, … each with the digest the coordinator holds; it returns them.
func checkWatchedVersions(t *testing.T, addrs string, last uint64, versions func() []*tsdv1.PolicyVersion) []*tsdv1.PolicyVersion {
	t.Helper()
	waitFor(t, 10*time.Second, "the watch to deliver the last version", func() bool {
		return uint64(len(versions())) >= last
	})
	seen := versions()
	for i, v := range seen {
		if v.GetVersion() != uint64(i+1) {
			t.Fatalf("watched versions %v: position %d holds version %d", versionNumbers(seen), i, v.GetVersion())
		}
	}
	checkDigests(t, addrs, seen)
	return seen
}

// checkDigests requires the coordinator to hold, for each watched version, the same digest the
// watch delivered: a version is never recorded twice with different weights.
func checkDigests(t *testing.T, addrs string, seen []*tsdv1.PolicyVersion) {
	t.Helper()
	c, err := coordinator.Dial(strings.Split(addrs, ","), rpc.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	digests := map[string]uint64{}
	for _, v := range seen {
		got, err := c.GetVersion(ctx, v.GetVersion())
		if err != nil {
			t.Fatal(err)
		}
		if got.GetSha256() != v.GetSha256() {
			t.Errorf("version %d: watched digest %s, coordinator now says %s", v.GetVersion(), v.GetSha256(), got.GetSha256())
		}
		if prev, ok := digests[v.GetSha256()]; ok {
			t.Errorf("versions %d and %d have the same digest %s", prev, v.GetVersion(), v.GetSha256())
		}
		digests[v.GetSha256()] = v.GetVersion()
	}
}

func versionNumbers(vs []*tsdv1.PolicyVersion) []uint64 {
	out := make([]uint64, len(vs))
	for i, v := range vs {
		out[i] = v.GetVersion()
	}
	return out
}
