package mcts_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"tsd/mcts"
	"tsd/mcts/mctstest"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenSearch is a small deterministic search (one worker) whose export is testdata's golden
// file and the tree viewer's test input.
func goldenSearch(t testing.TB) *mcts.Export {
	l := mctstest.Lattice{Depth: 3, Probs: []float64{0.4, 0.3, 0.2, 0.1}, Goal: []int{1, 3, 0},
		Value: func(c []int) float32 { return float32(c[len(c)-1]-1) / 4 }}
	cfg := mcts.DefaultConfig()
	cfg.Workers, cfg.Iterations = 1, 40
	res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
	if err != nil {
		t.Fatal(err)
	}
	return res.Tree.Export()
}

func TestExportGolden(t *testing.T) {
	got, err := json.MarshalIndent(goldenSearch(t), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "lattice.json")
	if *update {
		if err := os.WriteFile(path, append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(got)+"\n" {
		t.Errorf("export differs from %s (rerun with -update if the change is intended):\n%s", path, got)
	}
	if _, err := mcts.ReadExport(bytes.NewReader(want)); err != nil {
		t.Error(err)
	}
}

// Check must catch every kind of broken tree.
func TestCheckRefusesBrokenTrees(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("testdata", "lattice.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		edit func(e *mcts.Export)
	}{
		{"no nodes", func(e *mcts.Export) { e.Nodes = nil }},
		{"id out of place", func(e *mcts.Export) { e.Nodes[3].ID = 7 }},
		{"root with a parent", func(e *mcts.Export) { e.Nodes[0].Parent = 0 }},
		{"parent after child", func(e *mcts.Export) { e.Nodes[2].Parent = 5 }},
		{"visit lost", func(e *mcts.Export) { e.Nodes[1].Visits-- }},
		{"leaf value counted twice", func(e *mcts.Export) { e.Nodes[1].ValueSum += float64(e.Nodes[1].Value) }},
		{"priors do not sum to 1", func(e *mcts.Export) { e.Nodes[1].Prior /= 2 }},
		{"terminal without reward", func(e *mcts.Export) { e.Nodes[len(e.Nodes)-1].Reward = nil }},
		{"value outside [-1, 1]", func(e *mcts.Export) { e.Nodes[2].Value = 1.5 }},
		{"expanded without children", func(e *mcts.Export) { e.Nodes[len(e.Nodes)-1].Expanded = true }},
		{"step without tokens", func(e *mcts.Export) { e.Nodes[4].Tokens = 0 }},
		{"chosen path not the most visited", func(e *mcts.Export) { e.Chosen[1] = 4 }},
		{"chosen path cut short", func(e *mcts.Export) { e.Chosen = e.Chosen[:1] }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var e mcts.Export
			if err := json.Unmarshal(raw, &e); err != nil {
				t.Fatal(err)
			}
			tc.edit(&e)
			if err := e.Check(); !errors.Is(err, mcts.ErrBadExport) {
				t.Errorf("Check() = %v, want ErrBadExport", err)
			}
		})
	}
	if _, err := mcts.ReadExport(strings.NewReader(`{"nodes": [`)); !errors.Is(err, mcts.ErrBadExport) {
		t.Errorf("ReadExport(truncated) = %v, want ErrBadExport", err)
	}
}

// ReadExport must refuse, never panic on, anything but a consistent tree.
func FuzzReadExport(f *testing.F) {
	l := mctstest.Lattice{Depth: 2, Probs: []float64{0.6, 0.4}, Goal: []int{1, 0}}
	cfg := mcts.DefaultConfig()
	cfg.Samples, cfg.Workers, cfg.Iterations = 2, 2, 3
	res, err := mcts.Search(context.Background(), cfg, l.Prompt(), l.Model(), l.Reward)
	if err != nil {
		f.Fatal(err)
	}
	small, err := json.Marshal(res.Tree.Export())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(small)
	f.Add([]byte(`{"prompt_tokens":1,"chosen":[0],"nodes":[{"id":0,"parent":-1}]}`))
	f.Add([]byte(`{"chosen":[0,1],"nodes":[{"id":0,"parent":-1,"expanded":true,"visits":1},{"id":1,"parent":0,"tokens":1,"prior":1,"visits":1,"terminal":true,"reward":1,"value":1,"value_sum":1}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := mcts.ReadExport(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, mcts.ErrBadExport) {
				t.Fatalf("error %v does not wrap ErrBadExport", err)
			}
			return
		}
		again, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mcts.ReadExport(bytes.NewReader(again)); err != nil {
			t.Fatalf("accepted tree fails after a round trip: %v", err)
		}
	})
}

// chaos is a model that answers anything the contract allows, from a seed: steps of random
// length drawn from a few texts (so copies merge), random log-probs, values and EOS.
type chaos struct {
	seed  uint64
	texts int
}

func (c chaos) Step(_ context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	out := make([]mcts.StepResult, len(reqs))
	for i, req := range reqs {
		rng := rand.New(rand.NewPCG(c.seed, req.Seed))
		conts := make([]mcts.Continuation, req.Samples)
		for k := range conts {
			n := 1 + rng.IntN(req.MaxTokens)
			cont := mcts.Continuation{EOS: rng.IntN(4) == 0, Text: string(rune('a' + rng.IntN(c.texts)))}
			for range n {
				cont.Tokens = append(cont.Tokens, rng.Int32N(1000))
				cont.LogProbs = append(cont.LogProbs, -3*rng.Float32())
				cont.Values = append(cont.Values, 2*rng.Float32()-1)
			}
			conts[k] = cont
		}
		out[i] = mcts.StepResult{Continuations: conts}
	}
	return out, nil
}

// Any configuration and any model that keeps the contract give a tree that keeps the invariants
// and a well-formed trajectory.
func FuzzSearch(f *testing.F) {
	f.Add(uint64(1), uint8(16), uint8(10), uint8(4), uint8(1), uint8(0), uint8(40), uint8(8), uint8(3))
	f.Add(uint64(2), uint8(3), uint8(50), uint8(6), uint8(0), uint8(3), uint8(9), uint8(2), uint8(1))
	f.Add(uint64(3), uint8(1), uint8(99), uint8(1), uint8(2), uint8(2), uint8(1), uint8(1), uint8(5))
	f.Fuzz(func(t *testing.T, seed uint64, workers, iters, k, vv, flags, maxNew, stepMax, texts uint8) {
		cfg := mcts.DefaultConfig()
		cfg.Workers, cfg.Iterations = 1+int(workers%32), 1+int(iters%64)
		cfg.Samples, cfg.VirtualVisits = 1+int(k%8), int(vv%3)
		cfg.MaxNewTokens, cfg.StepMaxTokens = 1+int(maxNew%64), 1+int(stepMax%16)
		cfg.FirstPlay, cfg.VirtualLoss, cfg.Seed = mcts.FirstPlay(flags&1), float64(flags>>1&1), seed
		reward := func(tokens []int32, text string) float64 { return float64(len(tokens)%5)/2 - 1 }
		res, err := mcts.Search(context.Background(), cfg, []int32{7}, chaos{seed: seed, texts: 1 + int(texts%6)}, reward)
		if err != nil {
			t.Fatal(err)
		}
		if err := res.Tree.Export().Check(); err != nil {
			t.Fatal(err)
		}
		tr, st := res.Trajectory, res.Stats
		n := len(tr.Tokens)
		switch {
		case st.Simulations != cfg.Simulations():
			t.Fatalf("%d simulations, budget %d", st.Simulations, cfg.Simulations())
		case len(tr.LogProbs) != n || len(tr.Values) != n || n > cfg.MaxNewTokens:
			t.Fatalf("%d tokens, %d log-probs, %d values, budget %d", n, len(tr.LogProbs), len(tr.Values), cfg.MaxNewTokens)
		case len(tr.StepEnds) != len(tr.Nodes)-1 || (n > 0 && tr.StepEnds[len(tr.StepEnds)-1] != n):
			t.Fatalf("step ends %v for %d tokens on path %v", tr.StepEnds, n, tr.Nodes)
		case tr.Terminal && tr.Reward != reward(tr.Tokens, tr.Text):
			t.Fatalf("reward %v, want %v", tr.Reward, reward(tr.Tokens, tr.Text))
		}
	})
}
