package mcts_test

import (
	"context"
	"sync"
	"syscall"
	"testing"
	"time"

	"tsd/mcts"
	"tsd/mcts/mctstest"
)

// instant is a zero-cost model: canned steps of eight tokens with K distinct texts, values and
// EOS marks that vary with the request seed, so a benchmark measures the tree alone.
type instant struct {
	variants [8][]mcts.Continuation
	cut      [8][]mcts.Continuation // cut[n]: steps of n tokens, for requests near the budget
}

func newInstant(k int) *instant {
	m := &instant{}
	texts := "abcdefghijklmnopqrstuvwxyz"
	for v := range m.variants {
		for n := 1; n <= 8; n++ {
			conts := make([]mcts.Continuation, k)
			for i := range conts {
				c := mcts.Continuation{Text: texts[i%26 : i%26+1], EOS: n == 8 && (v+i)%8 == 0}
				for j := range n {
					c.Tokens = append(c.Tokens, int32(1000+8*i+j))
					c.LogProbs = append(c.LogProbs, -0.1*float32(i+1))
					c.Values = append(c.Values, float32((v*k+i)%9-4)/5)
				}
				conts[i] = c
			}
			if n == 8 {
				m.variants[v] = conts
			} else if v == 0 {
				m.cut[n] = conts
			}
		}
	}
	return m
}

func (m *instant) Step(_ context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	out := make([]mcts.StepResult, len(reqs))
	for i, r := range reqs {
		if r.MaxTokens < 8 {
			out[i].Continuations = m.cut[r.MaxTokens]
		} else {
			out[i].Continuations = m.variants[r.Seed%8]
		}
	}
	return out, nil
}

// cheapReward scores every completion as a wrong answer (−0.6 to −1), as the dense reward does
// for most completions early in training, so terminal nodes do not take over the search and
// most simulations expand a node.
func cheapReward(tokens []int32, _ string) float64 { return -0.6 - float64(len(tokens)%5)/10 }

func benchPrompt() []int32 {
	p := make([]int32, 64)
	for i := range p {
		p[i] = int32(i + 1)
	}
	return p
}

// A whole search at the source's settings (1,600 simulations, 16 workers, K=4) against a model
// that costs nothing: selection, expansion (priors, merging, prefixes), backup, trajectory.
func BenchmarkSearch(b *testing.B) {
	cfg := mcts.DefaultConfig()
	model, prompt := newInstant(cfg.Samples), benchPrompt()
	sims, cpu0 := 0, cpuTime()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		cfg.Seed = uint64(i)
		res, err := mcts.Search(context.Background(), cfg, prompt, model, cheapReward)
		if err != nil {
			b.Fatal(err)
		}
		sims += res.Stats.Simulations
	}
	reportSims(b, sims, cpu0)
}

// Selection and backup alone: descents through a fully expanded tree of depth 6 (K=4, 5,461
// nodes) that end on a terminal node and back its reward up, no model call, no allocation.
func BenchmarkSelectBackup(b *testing.B) {
	l := mctstest.Lattice{Depth: 6, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{0, 1, 2, 3, 0, 1}}
	cfg := mcts.DefaultConfig()
	cfg.Workers, cfg.Iterations = 1, 1<<20
	tree, err := mcts.NewTree(cfg, l.Prompt(), l.Reward)
	if err != nil {
		b.Fatal(err)
	}
	model := l.Model()
	for tree.Stats().Expansions < (1<<12-1)/3 { // every non-terminal node: 1+4+...+4^5
		leaf, ok := tree.Select()
		if !ok {
			continue
		}
		res, err := model.Step(context.Background(), []mcts.StepRequest{leaf.Request})
		if err != nil {
			b.Fatal(err)
		}
		if err := tree.Expand(leaf.Node, res[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	n, cpu0 := 0, cpuTime()
	for b.Loop() {
		if _, ok := tree.Select(); ok {
			b.Fatal("a fully expanded tree asked for the model")
		}
		n++
	}
	reportSims(b, n, cpu0)
}

// Twelve searches at once (the source's trees in flight) over one Batcher and a model that costs
// nothing: the overhead of batching across trees. MaxWait is 0 so no time goes to waiting.
func BenchmarkSearchesShareBatcher(b *testing.B) {
	const trees = 12
	cfg := mcts.DefaultConfig()
	model, prompt := newInstant(cfg.Samples), benchPrompt()
	batcher, err := mcts.NewBatcher(model, mcts.BatchConfig{MaxBatch: 192})
	if err != nil {
		b.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	go func() { _ = batcher.Run(ctx) }()
	sims, cpu0 := 0, cpuTime()
	var mu sync.Mutex
	for b.Loop() {
		var wg sync.WaitGroup
		for tree := range trees {
			wg.Go(func() {
				c := cfg
				c.Seed = uint64(tree)
				res, err := mcts.Search(ctx, c, prompt, batcher, cheapReward)
				if err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				sims += res.Stats.Simulations
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	reportSims(b, sims, cpu0)
	st := batcher.Stats()
	b.ReportMetric(float64(st.Requests)/float64(st.Batches), "requests/batch")
}

// Exporting a large tree: the first seed whose search grows past 5,000 nodes.
func BenchmarkExport(b *testing.B) {
	cfg := mcts.DefaultConfig()
	var res mcts.Result
	for res.Stats.Nodes < 5000 {
		cfg.Seed++
		var err error
		if res, err = mcts.Search(context.Background(), cfg, benchPrompt(), newInstant(cfg.Samples), cheapReward); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		res.Tree.Export()
	}
	b.ReportMetric(float64(res.Stats.Nodes), "nodes")
}

// reportSims reports simulations (selection + backup, with whatever expansion they needed) per
// second of benchmark time, and the process's CPU time per simulation since cpu0: on a shared
// machine CPU time is steadier than wall time (run with -cpu 1 so one core does the work; the
// garbage collector's CPU time counts too).
func reportSims(b *testing.B, sims int, cpu0 time.Duration) {
	b.ReportMetric(float64(sims)/b.Elapsed().Seconds(), "sims/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(sims), "ns/sim")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(sims), "cpu-ns/sim")
}

// cpuTime is the user and system CPU time of the whole process so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
