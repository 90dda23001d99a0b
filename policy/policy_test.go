package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/sugarme/gotch"

	"tsd/countdown"
	"tsd/episode"
	"tsd/mcts"
	"tsd/model"
	"tsd/tensor"
	"tsd/tokenizer"
)

// newTiny makes a tiny random model with the tiny tokenizer on a fresh worker.
func newTiny(t testing.TB) (*Policy, *tokenizer.BPE) {
	t.Helper()
	dir := t.TempDir()
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := tensor.NewWorker()
	t.Cleanup(w.Close)
	var m *model.Qwen2
	err = w.Do(context.Background(), func() error {
		cfg, err := model.Preset("tiny", tok.VocabSize())
		if err != nil {
			return err
		}
		cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 64, 160, 2
		m, err = model.Init(cfg, 3, model.Options{Device: gotch.CPU})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := NewPolicy(w, m, tok, 7)
	t.Cleanup(func() { p.Close() })
	return p, tok
}

// TestStepReusesPromptCache: expanding from a held prompt's cache gives exactly what prefilling
// the whole prefix gives, for requests of different depths and step caps in one call.
func TestStepReusesPromptCache(t *testing.T) {
	p, tok := newTiny(t)
	prompt := episode.Prompt(tok, countdown.Compact.Task(countdown.Problem{Input: []int{3, 5, 7}, Target: 22}))
	step := tok.Encode("<step>3+5=8</step>")
	reqs := []mcts.StepRequest{
		{Prefix: prompt, PromptLen: len(prompt), Samples: 3, Temperature: 1, MaxTokens: 12, Stop: "</step>", Seed: 1},
		{Prefix: append(append([]int32{}, prompt...), step...), PromptLen: len(prompt), Samples: 2, Temperature: 1, MaxTokens: 12, Stop: "</step>", Seed: 2},
		{Prefix: prompt, PromptLen: len(prompt), Samples: 2, Temperature: 1, MaxTokens: 5, Stop: "</step>", Seed: 3},
	}
	ctx := context.Background()
	cold, err := p.Step(ctx, reqs)
	if err != nil {
		t.Fatal(err)
	}
	p.Hold(prompt)
	warm, err := p.Step(ctx, reqs)
	p.Release(prompt)
	if err != nil {
		t.Fatal(err)
	}
	for i := range reqs {
		if len(warm[i].Continuations) != reqs[i].Samples {
			t.Fatalf("request %d: %d continuations, want %d", i, len(warm[i].Continuations), reqs[i].Samples)
		}
		for j, c := range warm[i].Continuations {
			d := cold[i].Continuations[j]
			if c.Text != d.Text || len(c.Tokens) > reqs[i].MaxTokens || len(c.Values) != len(c.Tokens) || len(c.LogProbs) != len(c.Tokens) {
				t.Fatalf("request %d sample %d: cached %q vs prefilled %q (%d tokens)", i, j, c.Text, d.Text, len(c.Tokens))
			}
			for k := range c.LogProbs {
				if diff := c.LogProbs[k] - d.LogProbs[k]; diff > 1e-4 || diff < -1e-4 {
					t.Fatalf("request %d sample %d token %d: log-prob %v cached, %v prefilled", i, j, k, c.LogProbs[k], d.LogProbs[k])
				}
			}
		}
	}
	if len(p.prompts) != 0 {
		t.Fatalf("%d prompt caches left after Release", len(p.prompts))
	}
}

// TestSearchWithTinyModel runs the real search over the tiny model and checks the exported tree's
// invariants and the trajectory's shape.
func TestSearchWithTinyModel(t *testing.T) {
	p, tok := newTiny(t)
	task := countdown.Compact.Task(countdown.Problem{Input: []int{3, 5, 7}, Target: 22})
	cfg := mcts.DefaultConfig()
	cfg.Workers, cfg.Iterations, cfg.StepMaxTokens, cfg.MaxNewTokens = 4, 6, 10, 40
	res, err := episode.Search(context.Background(), p, p, task, episode.Prompt(tok, task), cfg)
	if err != nil {
		t.Fatal(err)
	}
	exp := res.Tree.Export()
	if err := exp.Check(); err != nil {
		t.Fatalf("exported tree breaks an invariant: %v", err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(exp); err != nil {
		t.Fatal(err)
	}
	back, err := mcts.ReadExport(&buf)
	if err != nil {
		t.Fatalf("exported JSON does not read back: %v", err)
	}
	if err := back.Check(); err != nil {
		t.Fatal(err)
	}
	tr := res.Trajectory
	if len(tr.Tokens) == 0 || len(tr.LogProbs) != len(tr.Tokens) || len(tr.Values) != len(tr.Tokens) || tr.Reward < -1 || tr.Reward > 1 {
		t.Fatalf("trajectory: %d tokens, %d log-probs, %d values, reward %v", len(tr.Tokens), len(tr.LogProbs), len(tr.Values), tr.Reward)
	}
	if res.Stats.Simulations != cfg.Simulations() {
		t.Fatalf("%d simulations, want %d", res.Stats.Simulations, cfg.Simulations())
	}
}

func TestSample(t *testing.T) {
	p, tok := newTiny(t)
	prompts := [][]int32{
		episode.Prompt(tok, countdown.Compact.Task(countdown.Problem{Input: []int{1, 2}, Target: 3})),
		episode.Prompt(tok, countdown.Full.Task(countdown.Problem{Input: []int{4}, Target: 4})),
	}
	out, err := p.Sample(context.Background(), prompts, 3, model.SampleOptions{Temperature: 1, MaxNewTokens: 6})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || len(out[0]) != 3 || len(out[1]) != 3 {
		t.Fatalf("shape %d×%d", len(out), len(out[0]))
	}
}

// BenchmarkSearchTiny: one search at the source's width (W=16, K=4) over the tiny model; reports the
// share of wall time the tree's own bookkeeping takes (the rest is the model).
func BenchmarkSearchTiny(b *testing.B) {
	p, tok := newTiny(b)
	task := countdown.Compact.Task(countdown.Problem{Input: []int{3, 5, 7, 9}, Target: 22})
	prompt := episode.Prompt(tok, task)
	cfg := mcts.DefaultConfig()
	cfg.Iterations, cfg.StepMaxTokens, cfg.MaxNewTokens = 4, 16, 64
	p.Hold(prompt)
	defer p.Release(prompt)
	var book, wall float64
	for i := 0; i < b.N; i++ {
		cfg.Seed = uint64(i)
		res, err := episode.Search(context.Background(), p, p, task, prompt, cfg)
		if err != nil {
			b.Fatal(err)
		}
		book += res.Stats.Bookkeeping.Seconds()
		wall += res.Stats.Wall.Seconds()
	}
	b.ReportMetric(100*book/wall, "%bookkeeping")
}
