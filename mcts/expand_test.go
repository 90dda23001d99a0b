package mcts_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"tsd/mcts"
	"tsd/mcts/mctstest"
)

// A bad answer from the model is refused with a clear error and changes nothing: the node stays
// pending, and a good answer afterwards is accepted.
func TestExpandRefusesBadResults(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{0, 0, 0}}
	good := func(t *testing.T, leaf mcts.Leaf) mcts.StepResult {
		res, err := l.Model().Step(context.Background(), []mcts.StepRequest{leaf.Request})
		if err != nil {
			t.Fatal(err)
		}
		return res[0]
	}
	for _, tc := range []struct {
		name string
		edit func(r *mcts.StepResult)
	}{
		{"too few continuations", func(r *mcts.StepResult) { r.Continuations = r.Continuations[:3] }},
		{"no tokens", func(r *mcts.StepResult) { r.Continuations[1] = mcts.Continuation{Text: "x"} }},
		{"more tokens than MaxTokens", func(r *mcts.StepResult) {
			c := &r.Continuations[0]
			n := 65
			c.Tokens, c.LogProbs, c.Values = make([]int32, n), make([]float32, n), make([]float32, n)
		}},
		{"log-probs missing", func(r *mcts.StepResult) { r.Continuations[2].LogProbs = r.Continuations[2].LogProbs[:1] }},
		{"values missing", func(r *mcts.StepResult) { r.Continuations[2].Values = nil }},
		{"NaN log-prob", func(r *mcts.StepResult) { r.Continuations[0].LogProbs = []float32{float32(math.NaN()), 0} }},
		{"-Inf log-prob", func(r *mcts.StepResult) { r.Continuations[0].LogProbs = []float32{float32(math.Inf(-1)), 0} }},
		{"positive log-prob", func(r *mcts.StepResult) { r.Continuations[3].LogProbs = []float32{0.5, 0} }},
		{"value above 1", func(r *mcts.StepResult) { r.Continuations[1].Values = []float32{0, 1.5} }},
		{"NaN value", func(r *mcts.StepResult) { r.Continuations[1].Values = []float32{float32(math.NaN()), 0} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := newTree(t, mcts.DefaultConfig(), &l)
			leaf, _ := tree.Select()
			res := good(t, leaf)
			res.Continuations = append([]mcts.Continuation(nil), res.Continuations...)
			tc.edit(&res)
			if err := tree.Expand(leaf.Node, res); !errors.Is(err, mcts.ErrBadStepResult) {
				t.Fatalf("Expand() = %v, want ErrBadStepResult", err)
			}
			if tree.InFlight() != 1 || tree.Stats().Nodes != 1 {
				t.Fatalf("a refused answer changed the tree: %d in flight, %d nodes", tree.InFlight(), tree.Stats().Nodes)
			}
			if err := tree.Expand(leaf.Node, good(t, leaf)); err != nil {
				t.Fatalf("good answer after a bad one: %v", err)
			}
			checkTree(t, tree)
		})
	}
}

func TestExpandRefusesUnaskedNodes(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.5, 0.5}, Goal: []int{0, 0, 0}}
	cfg := mcts.DefaultConfig()
	cfg.Samples = 2
	tree := newTree(t, cfg, &l)
	for _, id := range []mcts.NodeID{mcts.Root, -1, 5} {
		if err := tree.Expand(id, mcts.StepResult{}); !errors.Is(err, mcts.ErrNotPending) {
			t.Errorf("Expand(%d) before any Select = %v, want ErrNotPending", id, err)
		}
	}
	expandRoot(t, tree, &l)
	if err := tree.Expand(mcts.Root, mcts.StepResult{}); !errors.Is(err, mcts.ErrNotPending) {
		t.Errorf("second Expand(root) = %v, want ErrNotPending", err)
	}
}

func TestRewardOutOfRange(t *testing.T) {
	for _, r := range []float64{1.5, -2, math.NaN()} {
		l := mctstest.Lattice{Depth: 1, Probs: []float64{1}, Goal: []int{0}}
		cfg := mcts.DefaultConfig()
		_, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), func([]int32, string) float64 { return r })
		if !errors.Is(err, mcts.ErrBadReward) {
			t.Errorf("reward %v: Search() = %v, want ErrBadReward", r, err)
		}
	}
}

// stepperFunc adapts a function to mcts.Stepper.
type stepperFunc func(context.Context, []mcts.StepRequest) ([]mcts.StepResult, error)

func (f stepperFunc) Step(ctx context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	return f(ctx, reqs)
}

func TestSearchErrors(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{0, 0, 0}}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	for _, tc := range []struct {
		name    string
		ctx     context.Context
		stepper mcts.Stepper
		want    error
	}{
		{"model fails", context.Background(), stepperFunc(func(context.Context, []mcts.StepRequest) ([]mcts.StepResult, error) {
			return nil, errModel
		}), errModel},
		{"too few results", context.Background(), stepperFunc(func(context.Context, []mcts.StepRequest) ([]mcts.StepResult, error) {
			return nil, nil
		}), mcts.ErrBadStepResult},
		{"bad continuation", context.Background(), stepperFunc(func(_ context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
			return make([]mcts.StepResult, len(reqs)), nil
		}), mcts.ErrBadStepResult},
		{"cancelled", cancelled, l.Model(), context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mcts.Search(tc.ctx, mcts.DefaultConfig(), l.Prompt(), tc.stepper, l.Reward)
			if !errors.Is(err, tc.want) {
				t.Errorf("Search() = %v, want %v", err, tc.want)
			}
		})
	}
}
