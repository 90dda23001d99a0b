package mcts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"testing"

	"tsd/mcts"
	"tsd/mcts/mctstest"
)

// checkTree fails the test unless the tree keeps every invariant of mcts.Export.Check (visits =
// children's visits + own evaluations, each value backed up once, ...), has nothing in flight,
// and survives a JSON round trip.
func checkTree(t *testing.T, tree *mcts.Tree) *mcts.Export {
	t.Helper()
	if n := tree.InFlight(); n != 0 {
		t.Errorf("%d simulations still in flight", n)
	}
	e := tree.Export()
	if err := e.Check(); err != nil {
		t.Fatalf("invariants: %v", err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(e); err != nil {
		t.Fatal(err)
	}
	back, err := mcts.ReadExport(&buf)
	if err != nil {
		t.Fatalf("round trip: %v", err)
	}
	if len(back.Nodes) != len(e.Nodes) || !slices.Equal(back.Chosen, e.Chosen) {
		t.Fatalf("round trip changed the tree: %d nodes %v, want %d nodes %v", len(back.Nodes), back.Chosen, len(e.Nodes), e.Chosen)
	}
	return e
}

// goalValue is a value head that knows the way: +0.5 on the goal's path, −0.5 off it.
func goalValue(goal []int) func([]int) float32 {
	return func(choices []int) float32 {
		if slices.Equal(choices, goal[:len(choices)]) {
			return 0.5
		}
		return -0.5
	}
}

// The search must find the single rewarding completion of a lattice whose policy steers away
// from it, where sampling from the policy almost never does.
func TestSearchFindsOnlyRewardingPath(t *testing.T) {
	probs, deep := []float64{0.32, 0.32, 0.32, 0.04}, []int{3, 1, 3, 0, 3, 2, 3, 3}
	for _, tc := range []struct {
		name      string
		lattice   mctstest.Lattice
		firstPlay mcts.FirstPlay
	}{
		{"terminal rewards only", mctstest.Lattice{Depth: 4, Probs: probs, Goal: deep[4:]}, mcts.FirstPlayConstant},
		{"value head guides first play", mctstest.Lattice{Depth: 8, Probs: probs, Goal: deep, Value: goalValue(deep)}, mcts.FirstPlayValue},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := tc.lattice
			cfg := mcts.DefaultConfig()
			cfg.FirstPlay = tc.firstPlay
			// Sampling as many completions as the search has simulations finds the goal with
			// probability 1-(1-p)^N.
			if p := 1 - math.Pow(1-l.GoalProbability(cfg.Temperature), float64(cfg.Simulations())); p > 0.01 {
				t.Fatalf("%d samples find the goal with probability %v; the test needs a rare goal", cfg.Simulations(), p)
			}
			res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
			if err != nil {
				t.Fatal(err)
			}
			checkTree(t, res.Tree)
			tr := res.Trajectory
			if tr.Reward != 1 || !tr.Terminal {
				t.Fatalf("chose %q, reward %v, terminal %v; want the goal %v", tr.Text, tr.Reward, tr.Terminal, l.Goal)
			}
			if res.Stats.Simulations != cfg.Simulations() {
				t.Errorf("%d simulations, want %d", res.Stats.Simulations, cfg.Simulations())
			}
			t.Logf("%q after %+v; %d samples would find it with probability %.2g", tr.Text, res.Stats,
				cfg.Simulations(), 1-math.Pow(1-l.GoalProbability(cfg.Temperature), float64(cfg.Simulations())))
		})
	}
}

// With every value equal, pUCT spends visits in proportion to the priors: the child maximising
// P/(1+N) is chosen, so N(a)+1 ∝ P(a).
func TestVisitsFollowPriors(t *testing.T) {
	probs := []float64{0.5, 0.25, 0.15, 0.1}
	for _, workers := range []int{1, 16} {
		t.Run("workers="+itoa(workers), func(t *testing.T) {
			l := mctstest.Lattice{Depth: 200, Probs: probs, Goal: make([]int, 200)}
			cfg := mcts.DefaultConfig()
			cfg.Workers, cfg.Iterations = workers, 1600/workers
			res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
			if err != nil {
				t.Fatal(err)
			}
			e := checkTree(t, res.Tree)
			root := e.Nodes[0]
			for _, n := range e.Nodes[1:5] {
				share := float64(n.Visits) / float64(root.Visits)
				if math.Abs(share-float64(n.Prior)) > 0.01 {
					t.Errorf("child %q: prior %.3f, visit share %.3f (%d of %d)", n.Step, n.Prior, share, n.Visits, root.Visits)
				}
			}
		})
	}
}

func itoa(n int) string { return string(rune('0'+n/10%10)) + string(rune('0'+n%10)) }

// After the root's expansion, W selections in a row must reach W different leaves when pending
// visits count (virtual loss), and all pile onto the best leaf when they do not. A pending visit
// of value 0 (the source's) lowers a child's exploration bonus only, so with skewed priors the
// best child can still win twice; a pending visit that counts as a loss always moves on.
func TestVirtualLossSpreadsWorkers(t *testing.T) {
	even, skewed := []float64{0.25, 0.25, 0.25, 0.25}, []float64{0.4, 0.3, 0.2, 0.1}
	for _, tc := range []struct {
		name           string
		probs          []float64
		virtualVisits  int
		virtualLoss    float64
		wantLeaves     int
		wantCollisions int
	}{
		{"source's virtual visit, even priors", even, 1, 0, 4, 0},
		{"source's virtual visit, skewed priors", skewed, 1, 0, 3, 1},
		{"virtual loss 1, skewed priors", skewed, 1, 1, 4, 0},
		{"no virtual visits, even priors", even, 0, 0, 1, 3},
		{"no virtual visits, skewed priors", skewed, 0, 1, 1, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := mctstest.Lattice{Depth: 3, Probs: tc.probs, Goal: []int{0, 0, 0}}
			cfg := mcts.DefaultConfig()
			cfg.Workers, cfg.VirtualVisits, cfg.VirtualLoss = 4, tc.virtualVisits, tc.virtualLoss
			tree := newTree(t, cfg, &l)
			expandRoot(t, tree, &l)
			var leaves []mcts.Leaf
			for range cfg.Workers {
				if leaf, ok := tree.Select(); ok {
					leaves = append(leaves, leaf)
				}
			}
			if len(leaves) != tc.wantLeaves || tree.Stats().Collisions != tc.wantCollisions || tree.InFlight() != cfg.Workers {
				t.Fatalf("%d leaves, %d collisions, %d in flight; want %d, %d, %d",
					len(leaves), tree.Stats().Collisions, tree.InFlight(), tc.wantLeaves, tc.wantCollisions, cfg.Workers)
			}
			for _, leaf := range leaves {
				expand(t, tree, &l, leaf)
			}
			e := checkTree(t, tree)
			if got := e.Nodes[0].Visits; got != len(leaves) {
				t.Errorf("root has %d visits after %d expansions", got, len(leaves))
			}
		})
	}
}

// Concurrent workers without virtual loss waste their rounds on collisions.
func TestVirtualLossSearch(t *testing.T) {
	l := mctstest.Lattice{Depth: 4, Probs: []float64{0.3, 0.3, 0.3, 0.1}, Goal: []int{3, 3, 3, 3}}
	collisions := map[int]int{}
	for _, vv := range []int{0, 1} {
		cfg := mcts.DefaultConfig()
		cfg.VirtualVisits = vv
		res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
		if err != nil {
			t.Fatal(err)
		}
		checkTree(t, res.Tree)
		collisions[vv] = res.Stats.Collisions
	}
	if collisions[1]*4 > collisions[0] {
		t.Errorf("collisions with virtual loss %d, without %d: want far fewer with it", collisions[1], collisions[0])
	}
}

func newTree(t *testing.T, cfg mcts.Config, l *mctstest.Lattice) *mcts.Tree {
	t.Helper()
	tree, err := mcts.NewTree(cfg, l.Prompt(), l.Reward)
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

// expand answers leaf from the lattice's model.
func expand(t *testing.T, tree *mcts.Tree, l *mctstest.Lattice, leaf mcts.Leaf) {
	t.Helper()
	res, err := l.Model().Step(context.Background(), []mcts.StepRequest{leaf.Request})
	if err != nil {
		t.Fatal(err)
	}
	if err := tree.Expand(leaf.Node, res[0]); err != nil {
		t.Fatal(err)
	}
}

func expandRoot(t *testing.T, tree *mcts.Tree, l *mctstest.Lattice) {
	t.Helper()
	leaf, ok := tree.Select()
	if !ok || leaf.Node != mcts.Root {
		t.Fatalf("first selection: %v %v, want the root", leaf.Node, ok)
	}
	expand(t, tree, l, leaf)
}

// The source counted a new leaf's value twice (once when it was stored, once when backed up).
// Here it is backed up exactly once, by the simulation that expands the leaf.
func TestValueBackedUpOnce(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{0, 0, 0},
		Value: func(c []int) float32 { return 0.25 * float32(len(c)) }}
	cfg := mcts.DefaultConfig()
	cfg.Workers = 1
	tree := newTree(t, cfg, &l)
	expandRoot(t, tree, &l)
	e := checkTree(t, tree)
	if e.Nodes[0].Visits != 0 || e.Nodes[0].ValueSum != 0 {
		t.Fatalf("root after its expansion: %d visits, value sum %v; the root has no value to back up", e.Nodes[0].Visits, e.Nodes[0].ValueSum)
	}
	leaf, ok := tree.Select()
	if !ok {
		t.Fatal("no leaf")
	}
	expand(t, tree, &l, leaf)
	e = checkTree(t, tree)
	child := e.Nodes[leaf.Node]
	for _, n := range []mcts.ExportNode{e.Nodes[0], child} {
		if n.Visits != 1 || n.ValueSum != 0.25 {
			t.Errorf("node %d: %d visits, value sum %v; want 1 visit of value 0.25", n.ID, n.Visits, n.ValueSum)
		}
	}
}

func TestPriors(t *testing.T) {
	step := func(text string, eos bool, lps ...float32) mcts.Continuation {
		c := mcts.Continuation{Text: text, EOS: eos, LogProbs: lps}
		for range lps {
			c.Tokens = append(c.Tokens, int32(100+len(c.Tokens)))
			c.Values = append(c.Values, 0)
		}
		return c
	}
	softmax := func(x ...float64) []float64 {
		z, out := 0.0, make([]float64, len(x))
		for _, v := range x {
			z += math.Exp(v)
		}
		for i, v := range x {
			out[i] = math.Exp(v) / z
		}
		return out
	}
	w := softmax(-1, -2, -3, -0.5)
	for _, tc := range []struct {
		name       string
		steps      []mcts.Continuation
		wantSteps  []string
		wantPriors []float64
		wantTokens []int // token count of each child: the likeliest copy stands for a merged child
	}{
		{
			name:       "softmax of summed log-probs, sorted",
			steps:      []mcts.Continuation{step("a", false, -0.5, -0.5), step("b", false, -2), step("c", false, -1, -1, -1), step("d", false, -0.25, -0.25)},
			wantSteps:  []string{"d", "a", "b", "c"},
			wantPriors: []float64{w[3], w[0], w[1], w[2]},
			wantTokens: []int{2, 2, 1, 3},
		},
		{
			name:       "copies of a step merge and add their mass",
			steps:      []mcts.Continuation{step("a", false, -1), step("b", false, -2), step("a", false, -1, -2), step("a", false, -0.25, -0.25)},
			wantSteps:  []string{"a", "b"},
			wantPriors: []float64{w[0] + w[2] + w[3], w[1]},
			wantTokens: []int{2, 1},
		},
		{
			name:       "same text but one ends the completion: two steps",
			steps:      []mcts.Continuation{step("a", false, -1), step("a", true, -2), step("a", false, -3), step("a", true, -0.5)},
			wantSteps:  []string{"a", "a"},
			wantPriors: []float64{w[1] + w[3], w[0] + w[2]},
			wantTokens: []int{1, 1},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &mctstest.Model{Steps: func([]int32) ([]mcts.Continuation, error) { return tc.steps, nil }}
			tree, err := mcts.NewTree(mcts.DefaultConfig(), []int32{1}, func([]int32, string) float64 { return 0 })
			if err != nil {
				t.Fatal(err)
			}
			leaf, _ := tree.Select()
			res, err := m.Step(context.Background(), []mcts.StepRequest{leaf.Request})
			if err != nil {
				t.Fatal(err)
			}
			if err := tree.Expand(leaf.Node, res[0]); err != nil {
				t.Fatal(err)
			}
			e := checkTree(t, tree)
			kids := e.Nodes[1:]
			if len(kids) != len(tc.wantSteps) {
				t.Fatalf("%d children, want %d", len(kids), len(tc.wantSteps))
			}
			for i, k := range kids {
				if k.Step != tc.wantSteps[i] || math.Abs(float64(k.Prior)-tc.wantPriors[i]) > 1e-6 || k.Tokens != tc.wantTokens[i] {
					t.Errorf("child %d: %q prior %.6f %d tokens, want %q prior %.6f %d tokens",
						i, k.Step, k.Prior, k.Tokens, tc.wantSteps[i], tc.wantPriors[i], tc.wantTokens[i])
				}
			}
		})
	}
}

// A step that ends with EOS makes a terminal node with the dense reward; so does a completion
// that spends the token budget, cut mid-step, whose reward is that of unfinished text.
func TestTerminalNodes(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{1, 1, 1}}
	for _, tc := range []struct {
		name         string
		maxNewTokens int
		wantTokens   int // tokens in a terminal step
		wantRewards  map[float64]bool
	}{
		{"EOS", 512, 2, map[float64]bool{1: true, -1: true}},
		{"token budget", 5, 1, map[float64]bool{-1: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mcts.DefaultConfig()
			cfg.MaxNewTokens = tc.maxNewTokens
			res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
			if err != nil {
				t.Fatal(err)
			}
			e := checkTree(t, res.Tree)
			terminals := 0
			for _, n := range e.Nodes {
				if !n.Terminal {
					continue
				}
				terminals++
				if n.Tokens != tc.wantTokens || !tc.wantRewards[*n.Reward] {
					t.Fatalf("terminal node %d: %d tokens, reward %v", n.ID, n.Tokens, *n.Reward)
				}
			}
			if terminals != 64 {
				t.Errorf("%d terminal nodes, want all 4^3", terminals)
			}
			if !res.Trajectory.Terminal {
				t.Errorf("chosen path is not terminal: %+v", res.Trajectory)
			}
		})
	}
}

func TestTrajectory(t *testing.T) {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{2, 0, 3},
		Value: func(c []int) float32 { return float32(len(c)) / 10 }}
	cfg := mcts.DefaultConfig()
	cfg.Workers, cfg.Iterations = 1, 200
	res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, res.Tree)
	tr := res.Trajectory
	want := mcts.Trajectory{
		Nodes:    tr.Nodes, // checked by checkTree: the most-visited path
		Tokens:   []int32{102, 2, 100, 2, 103, 3},
		LogProbs: []float32{float32(math.Log(0.2)), 0, float32(math.Log(0.4)), 0, float32(math.Log(0.1)), 0},
		Values:   []float32{0.1, 0.1, 0.2, 0.2, 0.3, 0.3},
		StepEnds: []int{2, 4, 6},
		Text:     "c2;c0;c3",
		Reward:   1,
		Terminal: true,
	}
	if got, _ := json.Marshal(tr); string(got) != string(must(json.Marshal(want))) {
		t.Errorf("trajectory\n got %s\nwant %s", got, must(json.Marshal(want)))
	}
	if len(tr.Nodes) != 4 || tr.Nodes[0] != mcts.Root {
		t.Errorf("path %v", tr.Nodes)
	}
}

// A search whose budget ends before any terminal still returns its most-visited path, scored as
// unfinished text.
func TestTrajectoryUnfinished(t *testing.T) {
	l := mctstest.Lattice{Depth: 50, Probs: []float64{0.5, 0.5}, Goal: make([]int, 50)}
	cfg := mcts.DefaultConfig()
	cfg.Workers, cfg.Iterations, cfg.Samples = 2, 5, 2
	res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
	if err != nil {
		t.Fatal(err)
	}
	checkTree(t, res.Tree)
	tr := res.Trajectory
	if tr.Terminal || tr.Reward != -1 || len(tr.StepEnds) == 0 || len(tr.Tokens) != 2*len(tr.StepEnds) {
		t.Errorf("unfinished trajectory %+v", tr)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

var errModel = errors.New("model on fire")

// Rounds make a search reproducible: the same seed gives the same tree, even with 16 workers
// and a model that samples (with copies to merge); another seed gives another tree.
func TestSearchIsDeterministic(t *testing.T) {
	l := mctstest.Lattice{Depth: 5, Probs: []float64{0.3, 0.25, 0.2, 0.1, 0.1, 0.05}, Goal: []int{5, 4, 3, 2, 1}}
	export := func(seed uint64) string {
		m := l.Model()
		m.Sample = true
		cfg := mcts.DefaultConfig()
		cfg.Seed = seed
		res, err := mcts.Search(context.Background(), cfg, l.Prompt(), m, l.Reward)
		if err != nil {
			t.Fatal(err)
		}
		e := checkTree(t, res.Tree)
		merged := 0
		for _, n := range e.Nodes {
			if n.Expanded {
				merged += cfg.Samples
			}
		}
		if merged == len(e.Nodes)-1 {
			t.Errorf("seed %d: no copies merged; the test needs some", seed)
		}
		return string(must(json.Marshal(e)))
	}
	a, b, c := export(1), export(1), export(2)
	if a != b {
		t.Error("the same seed gave two trees")
	}
	if a == c {
		t.Error("two seeds gave the same tree")
	}
}
