package mcts_test

import (
	"context"
	"errors"
	"math"
	"slices"
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

// A leaf's request carries its whole prefix (prompt, then the steps on its path), the sampling
// settings, a step cap that respects the token budget, and a seed of its own.
func TestRequest(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{0, 0, 0}}
	cfg := mcts.DefaultConfig()
	cfg.MaxNewTokens, cfg.Temperature, cfg.StopText = 67, 0.7, "</s>"
	tree := newTree(t, cfg, &l)
	expandRoot(t, tree, &l)
	a, _ := tree.Select()
	b, _ := tree.Select()
	expand(t, tree, &l, a)
	var c mcts.Leaf
	for ok := false; !ok || c.Node <= b.Node; {
		c, ok = tree.Select() // the next leaf below a
	}
	want := mcts.StepRequest{Prefix: []int32{1, 1, 1, 100, 2, 100, 2}, PromptLen: 3, Samples: 4, Temperature: 0.7,
		MaxTokens: 63, Stop: "</s>", Seed: c.Request.Seed}
	if got := c.Request; !slices.Equal(got.Prefix, want.Prefix) || got.PromptLen != want.PromptLen || got.Samples != want.Samples ||
		got.Temperature != want.Temperature || got.MaxTokens != want.MaxTokens || got.Stop != want.Stop {
		t.Errorf("request %+v, want %+v", got, want)
	}
	if a.Request.Seed == b.Request.Seed || b.Request.Seed == c.Request.Seed {
		t.Errorf("seeds %d, %d, %d are not distinct", a.Request.Seed, b.Request.Seed, c.Request.Seed)
	}
}
