package coordinator

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// step is one command applied at a time offset, with the error it must produce.
type step struct {
	name  string
	at    int64 // ms since the test's start
	cmd   *command
	want  error // nil = success
	check func(t *testing.T, val any)
}

func runSteps(t *testing.T, a *applier, steps []step) {
	t.Helper()
	start := a.now
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a.now = start + s.at
			val, err := a.apply(s.cmd)
			if !errors.Is(err, s.want) || (s.want == nil && err != nil) {
				t.Fatalf("err %v, want %v", err, s.want)
			}
			if s.check != nil {
				s.check(t, val)
			}
		})
	}
}

func acquire(id string, run RunConfig, ttl int64) *command {
	return &command{Op: opAcquireLease, Acquire: &AcquireLease{LearnerID: id, Addr: id + ".test:7201", Run: run, TTLMs: ttl}}
}

func renew(id string, epoch uint64, ttl int64) *command {
	return &command{Op: opRenewLease, Renew: &RenewLease{LearnerID: id, Epoch: epoch, TTLMs: ttl}}
}

func publish(v Version) *command { return &command{Op: opPublish, Publish: &v} }

func wantEpoch(epoch uint64) func(t *testing.T, val any) {
	return func(t *testing.T, val any) {
		t.Helper()
		var got uint64
		switch r := val.(type) {
		case AcquireResult:
			got = r.Lease.Epoch
		case LearnerLease:
			got = r.Epoch
		}
		if got != epoch {
			t.Fatalf("epoch %d, want %d (%+v)", got, epoch, val)
		}
	}
}

func TestLearnerLease(t *testing.T) {
	run, other := testRun("run1"), testRun("run2")
	sameID := run
	sameID.ConfigJSON = nil // the digest alone identifies the config
	runSteps(t, newApplier(t), []step{
		{"first learner records the run", 0, acquire("a", run, 1000), nil, wantEpoch(1)},
		{"second learner refused while the lease lives", 500, acquire("b", run, 1000), ErrLeaseHeld, nil},
		{"other config refused", 500, acquire("b", other, 1000), ErrConfigMismatch, nil},
		{"same learner again fences its old self", 600, acquire("a", sameID, 1000), nil, wantEpoch(2)},
		{"old epoch cannot renew", 700, renew("a", 1, 1000), ErrFenced, nil},
		{"current epoch renews", 700, renew("a", 2, 1000), nil, wantEpoch(2)},
		{"other learner cannot renew", 700, renew("b", 2, 1000), ErrFenced, nil},
		{"still held just before expiry", 1699, acquire("b", run, 1000), ErrLeaseHeld, nil},
		{"expired lease goes to the next learner", 1700, acquire("b", run, 1000), nil, wantEpoch(3)},
		{"fenced learner cannot publish", 1800, publish(testVersion(1, 8, 2)), ErrFenced, nil},
		{"fenced learner cannot renew", 1800, renew("a", 2, 1000), ErrFenced, nil},
		{"new learner publishes", 1800, publish(testVersion(1, 8, 3)), nil, nil},
	})
}

func TestPublishOrder(t *testing.T) {
	a := newApplier(t)
	a.must(acquire("a", testRun("r"), 10_000))
	v1 := testVersion(1, 8, 1)
	v1other := v1
	v1other.SHA256 = digest("other")
	stepBack := testVersion(3, 7, 1)
	unstamped := testVersion(3, 24, 1)
	unstamped.CreatedUnixMs = 0
	runSteps(t, a, []step{
		{"no version before 1", 0, publish(testVersion(2, 8, 1)), ErrVersionOrder, nil},
		{"version 1 (index 3: the refusal took 2)", 0, publish(v1), nil, func(t *testing.T, val any) {
			if v := val.(Version); v.CommitIndex != 3 {
				t.Fatalf("commit index %d, want 3", v.CommitIndex)
			}
		}},
		{"retry of version 1 succeeds", 10, publish(v1), nil, func(t *testing.T, val any) {
			if v := val.(Version); v.CommitIndex != 3 {
				t.Fatalf("retry returned commit index %d, want the original 3", v.CommitIndex)
			}
		}},
		{"different version 1 refused", 10, publish(v1other), ErrVersionOrder, nil},
		{"skipping refused", 10, publish(testVersion(3, 16, 1)), ErrVersionOrder, nil},
		{"version 2", 10, publish(testVersion(2, 16, 1)), nil, nil},
		{"step going back refused", 10, publish(stepBack), ErrVersionOrder, nil},
		{"unset creation time is stamped", 20, publish(unstamped), nil, func(t *testing.T, val any) {
			if v := val.(Version); v.CreatedUnixMs != a.now {
				t.Fatalf("created %d, want the command time %d", v.CreatedUnixMs, a.now)
			}
		}},
		{"lapsed lease cannot publish", 10_000, publish(testVersion(4, 32, 1)), ErrLeaseExpired, nil},
		{"a lapsed lease nobody took can be renewed", 10_001, renew("a", 1, 5000), nil, wantEpoch(1)},
		{"and then publish", 10_002, publish(testVersion(4, 32, 1)), nil, nil},
	})
	var versions []uint64
	a.fsm.view(func(s *State) {
		for _, v := range s.Versions {
			versions = append(versions, v.Version)
		}
	})
	if !slices.Equal(versions, []uint64{1, 2, 3, 4}) {
		t.Fatalf("versions %v", versions)
	}
}

func register(id, addr string, ttl int64) *command {
	return &command{Op: opRegisterActor, Register: &RegisterActor{ActorID: id, Addr: addr, TTLMs: ttl}}
}

func heartbeat(id string, held uint64, ttl int64) *command {
	return &command{Op: opHeartbeat, Heartbeat: &Heartbeat{ActorID: id, HeldVersion: held, TTLMs: ttl}}
}

func TestActorLeases(t *testing.T) {
	a := newApplier(t)
	a.must(acquire("l", testRun("r"), 100_000))
	a.must(publish(testVersion(1, 8, 1)))
	liveIDs := func(at int64) []string {
		var ids []string
		a.fsm.view(func(s *State) {
			for _, x := range s.liveActors(at) {
				ids = append(ids, x.ID)
			}
		})
		return ids
	}
	runSteps(t, a, []step{
		{"register", 0, register("x", "x.test:7301", 1000), nil, func(t *testing.T, val any) {
			r := val.(RegisterResult)
			if r.Learner == nil || r.Learner.LearnerID != "l" || r.Latest == nil || r.Latest.Version != 1 || r.Run == nil {
				t.Fatalf("register result %+v", r)
			}
		}},
		{"register without serving", 0, register("y", "", 5000), nil, nil},
		{"heartbeat renews", 900, heartbeat("x", 1, 1000), nil, func(t *testing.T, val any) {
			if r := val.(HeartbeatResult); r.LatestVersion != 1 || r.Learner == nil {
				t.Fatalf("heartbeat result %+v", r)
			}
		}},
		{"held version from the future", 900, heartbeat("x", 2, 1000), ErrUnknownVersion, nil},
		{"unknown actor", 900, heartbeat("z", 0, 1000), ErrUnknownActor, nil},
		{"expired actor must register again", 1900, heartbeat("x", 1, 1000), ErrUnknownActor, nil},
		{"deregister", 2000, &command{Op: opDeregisterActor, ActorID: "y"}, nil, nil},
		{"deregister again is fine", 2000, &command{Op: opDeregisterActor, ActorID: "y"}, nil, nil},
	})
	if ids := liveIDs(a.now); len(ids) != 0 {
		t.Fatalf("live actors after expiry and deregistration: %v", ids)
	}
}

func source(actor string, v uint64) *command {
	return &command{Op: opAssignSource, Source: &SourceRequest{ActorID: actor, Version: v}}
}

func TestWeightSource(t *testing.T) {
	a := newApplier(t)
	a.must(acquire("l", testRun("r"), 100_000))
	a.must(publish(testVersion(1, 8, 1)))
	a.must(publish(testVersion(2, 16, 1)))
	for _, id := range []string{"h1", "h2", "h3", "h4"} {
		a.must(register(id, id+".test:7301", 100_000))
		a.must(heartbeat(id, 2, 100_000))
	}
	a.must(register("old", "old.test:7301", 100_000))
	a.must(heartbeat("old", 1, 100_000))
	a.must(register("quiet", "", 100_000))
	a.must(heartbeat("quiet", 2, 100_000))

	first := map[string]int{}
	for i := range 8 {
		id := "f" + string(rune('a'+i))
		a.must(register(id, "", 100_000))
		addrs := a.must(source(id, 2)).([]string)
		if len(addrs) != maxPeerSources+1 || addrs[len(addrs)-1] != "l.test:7201" {
			t.Fatalf("fetcher %s got %v: want %d peers then the learner", id, addrs, maxPeerSources)
		}
		for _, ad := range addrs {
			if strings.HasPrefix(ad, "old.") || strings.HasPrefix(ad, "quiet") || strings.HasPrefix(ad, id) {
				t.Fatalf("fetcher %s sent to %s (wrong version, serves nothing, or itself)", id, ad)
			}
		}
		first[addrs[0]]++
	}
	for _, id := range []string{"h1", "h2", "h3", "h4"} {
		if n := first[id+".test:7301"]; n != 2 {
			t.Fatalf("8 fetchers over 4 holders: %v, want 2 each", first)
		}
	}
	t.Run("latest by default", func(t *testing.T) {
		if addrs := a.must(source("h1", 0)).([]string); addrs[0] == "h1.test:7301" || len(addrs) != 4 {
			t.Fatalf("version 0: %v", addrs)
		}
	})
	t.Run("no holders: learner only", func(t *testing.T) {
		if addrs := a.must(source("h1", 1)).([]string); !slices.Equal(addrs, []string{"old.test:7301", "l.test:7201"}) {
			t.Fatalf("version 1: %v", addrs)
		}
	})
	t.Run("new learner elsewhere is listed last", func(t *testing.T) {
		a.now += 200_000
		a.must(acquire("l2", testRun("r"), 100_000))
		a.must(register("n", "", 100_000))
		if addrs := a.must(source("n", 2)).([]string); !slices.Equal(addrs, []string{"l.test:7201", "l2.test:7201"}) {
			t.Fatalf("after learner change: %v", addrs)
		}
	})
	runSteps(t, a, []step{
		{"unknown version", 0, source("n", 3), ErrUnknownVersion, nil},
		{"unknown actor", 0, source("nobody", 1), ErrUnknownActor, nil},
	})
}

// TestSnapshotRestore checks that a restored state equals the original and snapshots to the
// same bytes, so a node restored from a snapshot is indistinguishable from one that replayed.
func TestSnapshotRestore(t *testing.T) {
	a := randomHistory(t, 7, 300)
	b1 := snapshotBytes(t, a.fsm)
	restored := NewFSM()
	if err := restored.Restore(io.NopCloser(bytes.NewReader(b1))); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(restored.state, a.fsm.state) {
		t.Fatal("restored state differs")
	}
	if b2 := snapshotBytes(t, restored); !bytes.Equal(b1, b2) {
		t.Fatal("restored state snapshots to different bytes")
	}
	t.Run("restore wakes watchers", func(t *testing.T) {
		f := NewFSM()
		_, ch := f.versionsAfter(0, 10)
		if err := f.Restore(io.NopCloser(bytes.NewReader(b1))); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		default:
			t.Fatal("watch channel not closed by Restore")
		}
	})
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	for _, tc := range []struct{ name, data string }{
		{"not json", "garbage"},
		{"no format", `{"state":{"versions":[]}}`},
		{"future format", `{"format":2,"state":{"versions":[]}}`},
		{"no state", `{"format":1}`},
		{"gap in versions", `{"format":1,"state":{"versions":[{"version":1},{"version":3}]}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := NewFSM().Restore(io.NopCloser(strings.NewReader(tc.data))); err == nil {
				t.Fatal("bad snapshot accepted")
			}
		})
	}
}

// TestRandomHistoriesKeepInvariants replays seeded random command sequences (most of them
// refused) on two state machines and checks they agree byte for byte and keep the invariants:
// versions contiguous from 1, steps non-decreasing, epochs never above the current lease's.
func TestRandomHistoriesKeepInvariants(t *testing.T) {
	for seed := range uint64(5) {
		a := randomHistory(t, seed, 400)
		b := randomHistory(t, seed, 400)
		if !bytes.Equal(snapshotBytes(t, a.fsm), snapshotBytes(t, b.fsm)) {
			t.Fatalf("seed %d: same log, different states", seed)
		}
		a.fsm.view(func(s *State) {
			var step uint64
			for i, v := range s.Versions {
				if v.Version != uint64(i+1) || v.Step < step || s.Learner == nil || v.LearnerEpoch > s.Learner.Epoch {
					t.Fatalf("seed %d: invariant broken at %+v (learner %+v)", seed, v, s.Learner)
				}
				step = v.Step
			}
		})
	}
}

// randomHistory applies n seeded random commands, refusals included, to a fresh FSM.
func randomHistory(t *testing.T, seed uint64, n int) *applier {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	a := newApplier(t)
	learners := []string{"la", "lb"}
	actors := []string{"x1", "x2", "x3", "x4"}
	var epoch, version, step uint64
	for range n {
		a.now += rng.Int64N(400)
		var c *command
		switch rng.IntN(7) {
		case 0:
			c = acquire(learners[rng.IntN(2)], testRun("r"), 1+rng.Int64N(2000))
		case 1:
			c = renew(learners[rng.IntN(2)], epoch, 1+rng.Int64N(2000))
		case 2, 3:
			step += rng.Uint64N(3)
			c = publish(testVersion(version+1-rng.Uint64N(2), step, epoch-rng.Uint64N(2)))
		case 4:
			c = register(actors[rng.IntN(4)], "a.test:1", 1+rng.Int64N(3000))
		case 5:
			c = heartbeat(actors[rng.IntN(4)], rng.Uint64N(version+1), 1+rng.Int64N(3000))
		case 6:
			c = source(actors[rng.IntN(4)], rng.Uint64N(version+2))
		}
		val, err := a.apply(c)
		if err == nil {
			switch r := val.(type) {
			case AcquireResult:
				epoch = r.Lease.Epoch
			case Version:
				version = max(version, r.Version)
			}
		}
	}
	return a
}
