package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// testLog discards logs unless TSD_TEST_LOG is set, when it writes them at debug level.
func testLog() *slog.Logger {
	if os.Getenv("TSD_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// fakeClock is a settable clock shared by all nodes of a test cluster.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.UnixMilli(1_700_000_000_000)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// digest is a valid sha256 hex string derived from s.
func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func testRun(id string) RunConfig {
	cfg := []byte(`{"run":"` + id + `"}`)
	sum := sha256.Sum256(cfg)
	return RunConfig{RunID: id, ConfigSHA256: hex.EncodeToString(sum[:]), ConfigJSON: cfg}
}

func testVersion(v, step, epoch uint64) Version {
	return Version{Version: v, Step: step, SHA256: digest(fmt.Sprint("weights", v)), SizeBytes: 1000 + int64(v),
		FetchAddr: "l.test:7201", LearnerEpoch: epoch, CreatedUnixMs: 1}
}

// applier drives an FSM directly with raft log entries, as raft would.
type applier struct {
	t     *testing.T
	fsm   *FSM
	index uint64
	now   int64
}

func newApplier(t *testing.T) *applier { return &applier{t: t, fsm: NewFSM(), now: 1_000_000} }

func (a *applier) apply(c *command) (any, error) {
	a.t.Helper()
	c.NowUnixMs = a.now
	b, err := c.encode()
	if err != nil {
		a.t.Fatal(err)
	}
	a.index++
	res := a.fsm.Apply(&raft.Log{Index: a.index, Type: raft.LogCommand, Data: b}).(result)
	return res.val, res.err
}

func (a *applier) must(c *command) any {
	a.t.Helper()
	v, err := a.apply(c)
	if err != nil {
		a.t.Fatalf("%s: %v", c.Op, err)
	}
	return v
}

// snapshotBytes persists the FSM's snapshot into memory.
func snapshotBytes(t *testing.T, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()
	return sink.Bytes()
}

// memSink is a raft.SnapshotSink into a buffer.
type memSink struct {
	bytes.Buffer
	cancelled bool
}

func (s *memSink) ID() string    { return "mem" }
func (s *memSink) Cancel() error { s.cancelled = true; return nil }
func (s *memSink) Close() error  { return nil }

// waitFor polls cond until it holds or the timeout passes; raft elections have no callback to
// wait on, so cluster tests poll (tests never assert on durations).
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
