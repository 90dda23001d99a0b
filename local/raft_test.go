package local

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"tsd/coordinator"
	"tsd/rpc"
)

// TestCoordinatorLeaderKill, with the real roles: three raft
// coordinators, a learner and an actor. The raft leader is killed with SIGKILL; a new leader
// takes over and the learner keeps publishing through it. A second learner for the run is refused
// while the lease lives, and a learner that takes the lease over (the same id started elsewhere)
// fences the running one, which stops. (coordinator's TestProcessLeaderKill covers the same at the
// API level, and the killed node's rejoin.)
func TestCoordinatorLeaderKill(t *testing.T) {
	f := files(t)
	cfg := f.config(t)
	cfg.Coordinators, cfg.Actors = 3, 1
	sys := start(t, cfg)
	versions := watchVersions(t, cfg.CoordinatorAddrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	waitFor(t, 30*time.Second, "version 2", func() bool { return status(sys).GetVersion() >= 2 })
	all := dialCoordinators(t, strings.Split(cfg.CoordinatorAddrs(), ","))
	cs, err := all.ClusterState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leader := cs.GetLeaderId()
	var survivors []string
	for i, p := range sys.Coordinators {
		if cfg.CoordinatorID(i) != leader {
			survivors = append(survivors, cfg.coordAddr(i))
			continue
		}
		if err := p.Kill(); err != nil {
			t.Fatal(err)
		}
		p.Wait() //nolint:errcheck // killed
	}
	if len(survivors) != 2 {
		t.Fatalf("leader %q is none of the three nodes", leader)
	}
	rest := dialCoordinators(t, survivors)
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		cs, err := rest.ClusterState(ctx)
		return err == nil && cs.GetLeaderId() != "" && cs.GetLeaderId() != leader
	})
	killedAt := status(sys).GetVersion()
	waitFor(t, time.Minute, "two more versions through the new leader", func() bool {
		return status(sys).GetVersion() >= killedAt+2
	})
	t.Logf("killed leader %s at version %d; publishing went on", leader, killedAt)

	second := startLearner(t, sys, "learner-b", 1)
	if err := second.Wait(); err == nil || !logHas(t, cfg.DataDir, second.Name, "holds epoch") {
		t.Fatalf("a second learner while the lease lives: exit %v, want a refusal", err)
	}
	usurper := startLearner(t, sys, "learner", 2) // the same id on a fresh data dir
	if err := usurper.Wait(); err == nil {
		t.Fatal("a learner with a fresh data dir on a trained run ran")
	}
	waitFor(t, 30*time.Second, "the fenced learner to stop", func() bool { return !running(sys.Learner) })
	if err := sys.Learner.Wait(); err == nil || !logHas(t, cfg.DataDir, "learner", "learner fenced") {
		t.Fatalf("the fenced learner exited with %v", err)
	}
	seen := versions()
	for i, v := range seen {
		if v.GetVersion() != uint64(i+1) || v.GetLearnerEpoch() != 1 {
			t.Fatalf("version %d at position %d from epoch %d: want 1, 2, 3, … all from the first learner's epoch", v.GetVersion(), i, v.GetLearnerEpoch())
		}
	}
	if !running(sys.Actors[0]) {
		t.Error("the actor stopped")
	}
}

func dialCoordinators(t *testing.T, addrs []string) *coordinator.Client {
	t.Helper()
	c, err := coordinator.Dial(addrs, rpc.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// startLearner starts one more learner process for the run, with its own data dir and port.
func startLearner(t *testing.T, sys *System, id string, n int) *Proc {
	t.Helper()
	c := sys.cfg
	name := "learner-" + strconv.Itoa(n)
	args := append([]string{"learner", "--id", id, "--coordinators", c.CoordinatorAddrs(),
		"--addr", "127.0.0.1:" + strconv.Itoa(c.BasePort+200+n), "--data-dir", filepath.Join(c.DataDir, name),
		"--model", c.Model, "--algo", c.Algo}, c.LearnerArgs...)
	p, err := sys.spawn(name, args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Stop(5 * time.Second) }) //nolint:errcheck
	return p
}

// logHas reports whether process name's log contains s.
func logHas(t *testing.T, dataDir, name, s string) bool {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dataDir, "logs", name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Contains(string(b), s)
}
