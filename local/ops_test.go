package local

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
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
	waitFor(t, 10*time.Second, "the watch to deliver the last version", func() bool {
		return uint64(len(versions())) >= final.GetVersion()
	})
	seen := versions()
	for i, v := range seen {
		if v.GetVersion() != uint64(i+1) {
			t.Fatalf("watched versions %v: position %d holds version %d", versionNumbers(seen), i, v.GetVersion())
		}
	}
	checkDigests(t, cfg.CoordinatorAddrs(), seen)
	if b, err := os.ReadFile(filepath.Join(cfg.DataDir, "logs", "learner.log")); err == nil {
		t.Logf("lapsed-lease renewals in the learner's log: %d", strings.Count(string(b), "lease lapsed"))
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
	for _, p := range sys.Actors {
		if !running(p) {
			t.Errorf("%s exited", p.Name)
		}
	}
}
