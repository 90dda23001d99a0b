package learner

import (
	"context"
	"errors"
	"path/filepath"
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
