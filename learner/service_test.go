package learner

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// TestResumeFinishesInterruptedPublish: a learner that wrote the checkpoint and stored the weights
// of version 2 but could not publish it (the coordinator went away, then the learner died) must,
// when opened again on its data dir, publish exactly those weights as version 2 before anything
// else, and its ledger must hold each rollout of the two steps once.
func TestResumeFinishesInterruptedPublish(t *testing.T) {
	r := newServiceRig(t, rigOptions{edit: func(c *ServiceConfig) { c.PublishEvery, c.MaxSteps = 1, 1 }})
	ctx := ctxFor(t, time.Minute)
	s, _ := stream(ctx, t, r.client(t, rpc.Config{}), "a1")
	send := func(from, to uint64) {
		t.Helper()
		for seq := from; seq <= to; seq++ {
			if a := exchange(t, s, r.goodRollout(seq)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
				t.Fatalf("seq %d: %v", seq, a)
			}
		}
	}
	send(1, 4)
	if err := r.svc.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := r.coord.GetVersion(ctx, 0); err != nil || v.GetVersion() != 1 {
		t.Fatalf("after the first step: version %v, %v", v, err)
	}

	send(5, 8)
	r.node.stop()
	r.svc.cfg.MaxSteps = 2
	short, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := r.svc.Run(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("publishing with the coordinator down: %v, want the deadline", err)
	}
	stored, err := r.svc.Store().Get(2)
	if err != nil {
		t.Fatalf("version 2 was not stored before the publish: %v", err)
	}
	r.srv.Shutdown(time.Second)
	r.svc.Close() // the learner dies

	r.node.start(t)
	coord := r.node.client(t)
	svc, err := Open(ctx, r.sc, r.tc, coord, discardLog())
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	v, err := coord.GetVersion(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.GetVersion() != 2 || v.GetStep() != 2 || v.GetSha256() != stored.GetSha256() || v.GetLearnerEpoch() != 2 {
		t.Fatalf("after reopening: latest %v, want version 2 at step 2 with digest %s from epoch 2", v, stored.GetSha256())
	}
	if got := svc.Ingest().Version(); got != 2 {
		t.Errorf("the reopened learner admits against version %d, want 2", got)
	}
	entries, err := ReadLedger(filepath.Join(r.sc.DataDir, "trained.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 8 {
		t.Fatalf("ledger %v: want seqs 1..8 once", entries)
	}
	for i, e := range entries {
		if e.Seq != uint64(i+1) || e.Step != int64(i/4+1) {
			t.Fatalf("ledger line %d: %+v, want seq %d in step %d", i, e, i+1, i/4+1)
		}
	}
}

// TestSkippedStepPublishesNothing: a step whose gradient is not finite is skipped (the weights do
// not change); it must not publish the unchanged weights again as a new version.
func TestSkippedStepPublishesNothing(t *testing.T) {
	r := newServiceRig(t, rigOptions{
		edit:  func(c *ServiceConfig) { c.PublishEvery, c.MaxSteps = 1, 3 },
		train: func(c *Config) { c.Optim.LR, c.Optim.WeightDecay = 1e30, 0 }, // the first step blows the weights up; later gradients are NaN
	})
	ctx := ctxFor(t, time.Minute)
	s, _ := stream(ctx, t, r.client(t, rpc.Config{}), "a1")
	for seq := uint64(1); seq <= 12; seq++ {
		if a := exchange(t, s, r.goodRollout(seq)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
			t.Fatalf("seq %d: %v", seq, a)
		}
	}
	short, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	err := r.svc.Run(short)
	t.Logf("run: %v; steps %d", err, r.svc.trainer.Steps())
	v, err := r.coord.GetVersion(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	if v.GetVersion() != 1 {
		t.Errorf("latest version %d at step %d after one real step, want 1", v.GetVersion(), v.GetStep())
	}
}

// TestOpenRefusesBufferBelowBatch: a learner withholds credits once MaxBuffer rollouts wait
// untrained, and trains only whole batches; with MaxBuffer below the batch it would stop both
// the actors and itself for good. Open must refuse that configuration.
func TestOpenRefusesBufferBelowBatch(t *testing.T) {
	dir := t.TempDir()
	modelDir := filepath.Join(dir, "model")
	writeTinyModel(t, modelDir)
	coord := newTestCoordinator(t).client(t)
	sc, tc := testServiceConfig(dir, modelDir)
	sc.MaxBuffer = tc.GlobalBatch - 1
	ctx := ctxFor(t, time.Minute)
	svc, err := Open(ctx, sc, tc, coord, discardLog())
	if err == nil {
		svc.Close()
	}
	if !errors.Is(err, ErrConfig) {
		t.Fatalf("max buffer %d with a global batch of %d: %v, want ErrConfig", sc.MaxBuffer, tc.GlobalBatch, err)
	}
}

// TestOpenRemovesCrashLeftovers: the temporary directories a learner killed mid-checkpoint or
// mid-export leaves in its data dir (each as large as the model) are removed when it starts
// again, and each removal is logged; the rest of the data dir is left alone.
func TestOpenRemovesCrashLeftovers(t *testing.T) {
	leftovers := []string{".checkpoint.tmp-123456", ".export-987654", ".export-1"}
	keep := "operator-notes"
	var logged syncBuffer
	r := newServiceRig(t, rigOptions{logTo: &logged, before: func(dataDir string) {
		for _, name := range append(leftovers, keep) {
			dir := filepath.Join(dataDir, name)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), make([]byte, 1<<16), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}})
	for _, name := range leftovers {
		path := filepath.Join(r.sc.DataDir, name)
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s is still there after Open (%v)", name, err)
		}
		if !strings.Contains(logged.String(), path) {
			t.Errorf("the removal of %s was not logged", path)
		}
	}
	if _, err := os.Stat(filepath.Join(r.sc.DataDir, keep)); err != nil {
		t.Errorf("Open removed %s, which is not a leftover: %v", keep, err)
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's goroutines and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestPublishRenewsLapsedLease: a lease that lapsed while nobody renewed it (the coordinators
// were unreachable for longer than its TTL) is renewed, and the publish goes through under the
// same epoch; only a lease another learner acquired since stops the learner (ErrFenced).
func TestPublishRenewsLapsedLease(t *testing.T) {
	r := newServiceRig(t, rigOptions{edit: func(c *ServiceConfig) { c.LeaseTTL = time.Second }})
	ctx := ctxFor(t, time.Minute)
	epoch := r.svc.epoch
	time.Sleep(1500 * time.Millisecond) // no Run, so no renewals: the lease lapses
	if err := r.svc.publish(ctx, 1); err != nil {
		t.Fatalf("publish after the lease lapsed: %v", err)
	}
	v, err := r.coord.GetVersion(ctx, 0)
	if err != nil || v.GetVersion() != 1 || v.GetLearnerEpoch() != epoch {
		t.Fatalf("latest %v (%v), want version 1 from epoch %d", v, err, epoch)
	}

	time.Sleep(1500 * time.Millisecond)
	run, err := r.svc.runConfig()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.coord.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{
		LearnerId: "another", Addr: "127.0.0.1:1", Run: run, TtlMs: time.Minute.Milliseconds()}); err != nil {
		t.Fatalf("another learner taking the lapsed lease: %v", err)
	}
	if err := r.svc.publish(ctx, 2); !errors.Is(err, ErrFenced) {
		t.Fatalf("publish after another learner took the lease: %v, want ErrFenced", err)
	}
}
