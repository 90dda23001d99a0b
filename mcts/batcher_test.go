package mcts_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"tsd/mcts"
	"tsd/mcts/mctstest"
)

// echo answers each request with one continuation whose tokens are the request's prefix, so a
// caller can tell its own answers, and records the batch sizes it saw.
type echo struct {
	mu      sync.Mutex
	batches []int
	err     error
	short   bool // answer one request too few
}

func (e *echo) Step(_ context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	e.mu.Lock()
	e.batches = append(e.batches, len(reqs))
	e.mu.Unlock()
	if e.err != nil {
		return nil, e.err
	}
	out := make([]mcts.StepResult, len(reqs))
	for i, r := range reqs {
		out[i] = mcts.StepResult{Continuations: []mcts.Continuation{{Tokens: r.Prefix}}}
	}
	if e.short {
		out = out[1:]
	}
	return out, nil
}

func (e *echo) sizes() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.batches)
}

// startBatcher runs a Batcher until the test ends.
func startBatcher(t *testing.T, next mcts.Stepper, cfg mcts.BatchConfig) *mcts.Batcher {
	t.Helper()
	b, err := mcts.NewBatcher(next, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- b.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run() = %v, want context.Canceled", err)
		}
	})
	return b
}

// requests returns n requests whose prefixes name the caller and the request.
func requests(caller, n int) []mcts.StepRequest {
	reqs := make([]mcts.StepRequest, n)
	for i := range reqs {
		reqs[i] = mcts.StepRequest{Prefix: []int32{int32(caller), int32(i)}, Samples: 1}
	}
	return reqs
}

// Many callers, calls larger than a batch: every caller gets its own answers, in order, and no
// batch exceeds MaxBatch.
func TestBatcherRoutesAnswers(t *testing.T) {
	for _, cfg := range []mcts.BatchConfig{{MaxBatch: 3}, {MaxBatch: 5, MaxWait: time.Millisecond}, {MaxBatch: 64, MaxWait: time.Millisecond}} {
		t.Run(fmt.Sprintf("%+v", cfg), func(t *testing.T) {
			model := &echo{}
			b := startBatcher(t, model, cfg)
			var wg sync.WaitGroup
			total := 0
			for caller := range 12 {
				n := 1 + caller%7
				total += n
				wg.Go(func() {
					for range 5 {
						reqs := requests(caller, n)
						res, err := b.Step(context.Background(), reqs)
						if err != nil {
							t.Error(err)
							return
						}
						for i := range reqs {
							if got := res[i].Continuations[0].Tokens; !slices.Equal(got, reqs[i].Prefix) {
								t.Errorf("caller %d request %d got the answer for %v", caller, i, got)
							}
						}
					}
				})
			}
			wg.Wait()
			sizes, sum := model.sizes(), 0
			for _, s := range sizes {
				sum += s
				if s > cfg.MaxBatch {
					t.Errorf("batch of %d, MaxBatch %d", s, cfg.MaxBatch)
				}
			}
			if st := b.Stats(); sum != 5*total || st.Requests != int64(sum) || st.Batches != int64(len(sizes)) {
				t.Errorf("model saw %d requests in %d batches, stats %+v; callers sent %d", sum, len(sizes), st, 5*total)
			}
			t.Logf("%d batches, mean size %.1f", len(sizes), float64(sum)/float64(len(sizes)))
		})
	}
}

// With a MaxWait far longer than the test, a batch can only go when it is full: eight callers of
// one request each make exactly two batches of four.
func TestBatcherGathersCallers(t *testing.T) {
	model := &echo{}
	b := startBatcher(t, model, mcts.BatchConfig{MaxBatch: 4, MaxWait: time.Hour})
	var wg sync.WaitGroup
	for caller := range 8 {
		wg.Go(func() {
			if _, err := b.Step(context.Background(), requests(caller, 1)); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := model.sizes(); !slices.Equal(got, []int{4, 4}) {
		t.Errorf("batches %v, want [4 4]", got)
	}
}

// With no MaxWait a lone request goes at once, in a batch of one.
func TestBatcherNoWait(t *testing.T) {
	model := &echo{}
	b := startBatcher(t, model, mcts.BatchConfig{MaxBatch: 4})
	if _, err := b.Step(context.Background(), requests(0, 1)); err != nil {
		t.Fatal(err)
	}
	if got := model.sizes(); !slices.Equal(got, []int{1}) {
		t.Errorf("batches %v, want [1]", got)
	}
}

func TestBatcherErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		model *echo
		want  error
	}{
		{"model fails", &echo{err: errModel}, errModel},
		{"model answers too few", &echo{short: true}, mcts.ErrBadStepResult},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := startBatcher(t, tc.model, mcts.BatchConfig{MaxBatch: 2})
			var wg sync.WaitGroup
			for caller := range 4 {
				wg.Go(func() {
					if _, err := b.Step(context.Background(), requests(caller, 3)); !errors.Is(err, tc.want) {
						t.Errorf("caller %d: Step() = %v, want %v", caller, err, tc.want)
					}
				})
			}
			wg.Wait()
		})
	}
}

// blocking holds every batch until released, so a test can queue calls behind it.
type blocking struct {
	started chan struct{}
	release chan struct{}
}

func (m *blocking) Step(_ context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	m.started <- struct{}{}
	<-m.release
	return make([]mcts.StepResult, len(reqs)), nil
}

// Stopping the Batcher fails the calls it still holds, and every later call.
func TestBatcherStop(t *testing.T) {
	model := &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
	b, err := mcts.NewBatcher(model, mcts.BatchConfig{MaxBatch: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	ran := make(chan error)
	go func() { ran <- b.Run(ctx) }()

	first := make(chan error)
	go func() { _, err := b.Step(context.Background(), requests(0, 1)); first <- err }()
	<-model.started // the first call is in the model; the second queues behind it
	second := make(chan error)
	go func() { _, err := b.Step(context.Background(), requests(1, 1)); second <- err }()
	stop()
	close(model.release)
	if err := <-first; err != nil {
		t.Errorf("call in the model when stopped: %v, want its answer", err)
	}
	if err := <-second; !errors.Is(err, mcts.ErrBatcherStopped) {
		t.Errorf("queued call: %v, want ErrBatcherStopped", err)
	}
	if err := <-ran; !errors.Is(err, context.Canceled) {
		t.Errorf("Run() = %v", err)
	}
	if _, err := b.Step(context.Background(), requests(2, 1)); !errors.Is(err, mcts.ErrBatcherStopped) {
		t.Errorf("call after stop: %v, want ErrBatcherStopped", err)
	}
	if err := b.Run(context.Background()); !errors.Is(err, mcts.ErrBadConfig) {
		t.Errorf("second Run() = %v, want an error", err)
	}
}

// A caller that gives up gets its context's error back; the Batcher carries on.
func TestBatcherCallerCancels(t *testing.T) {
	model := &blocking{started: make(chan struct{}, 4), release: make(chan struct{})}
	b := startBatcher(t, model, mcts.BatchConfig{MaxBatch: 1})
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error)
	go func() { _, err := b.Step(ctx, requests(0, 1)); got <- err }()
	<-model.started
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Errorf("Step() = %v, want context.Canceled", err)
	}
	close(model.release)
	if _, err := b.Step(context.Background(), requests(1, 1)); err != nil {
		t.Errorf("next call: %v", err)
	}
}

// Searches in their own goroutines share one model through a Batcher, as the actor runs them.
func TestSearchesShareBatcher(t *testing.T) {
	l := mctstest.Lattice{Depth: 4, Probs: []float64{0.3, 0.3, 0.3, 0.1}, Goal: []int{3, 2, 3, 3}}
	model := l.Model()
	b := startBatcher(t, model, mcts.BatchConfig{MaxBatch: 96, MaxWait: time.Millisecond})
	var wg sync.WaitGroup
	for tree := range 6 {
		wg.Go(func() {
			cfg := mcts.DefaultConfig()
			cfg.Seed = uint64(tree)
			res, err := mcts.Search(context.Background(), cfg, l.Prompt(), b, l.Reward)
			if err != nil {
				t.Error(err)
				return
			}
			if err := res.Tree.Export().Check(); err != nil {
				t.Error(err)
			}
			if res.Trajectory.Reward != 1 {
				t.Errorf("tree %d chose %q", tree, res.Trajectory.Text)
			}
		})
	}
	wg.Wait()
	st := b.Stats()
	t.Logf("%d requests in %d batches", st.Requests, st.Batches)
}
