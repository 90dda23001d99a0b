package actor

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"

	"github.com/sugarme/gotch"
	"google.golang.org/protobuf/encoding/protojson"

	"tsd/countdown"
	"tsd/episode"
	"tsd/model"
	"tsd/policy"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/tensor"
	"tsd/tokenizer"
)

// tinyPolicy is a random tiny model with the tiny tokenizer on a fresh worker.
func tinyPolicy(t *testing.T) (*policy.Policy, *tokenizer.BPE) {
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
		m, err = model.Init(cfg, 5, model.Options{Device: gotch.CPU})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	p := policy.NewPolicy(w, m, tok, 3)
	t.Cleanup(func() { p.Close() })
	return p, tok
}

func tasks(tok *tokenizer.BPE) []Task {
	problems := []countdown.Problem{{Input: []int{3, 5, 7}, Target: 22}, {Input: []int{2, 9}, Target: 18}}
	out := make([]Task, len(problems))
	for i, p := range problems {
		task := countdown.Compact.Task(p)
		out[i] = Task{ID: fmt.Sprintf("t:%d", i), Task: task, Prompt: episode.Prompt(tok, task)}
	}
	return out
}

// TestProduce: every algorithm's rollouts on a tiny model are graded by the task, carry their
// step ends and count every token generated for them (best-of-n's all N samples).
// TSD_DUMP_ROLLOUTS=file writes them (creation times zeroed) for comparing two builds.
func TestProduce(t *testing.T) {
	pol, tok := tinyPolicy(t)
	cfg := DefaultConfig()
	cfg.GroupSize, cfg.BestOfN, cfg.MaxNewTokens, cfg.SampleTemperature, cfg.Seed = 3, 4, 24, 1.0, 11
	cfg.Search.Workers, cfg.Search.Iterations, cfg.Search.StepMaxTokens, cfg.Search.MaxNewTokens = 2, 3, 8, 24
	var dump []byte
	for _, algo := range []string{AlgoMCTS, AlgoGroup, AlgoBestOfN} {
		cfg.Algo = algo
		p := &Producer{cfg: cfg, tok: tok}
		ts := tasks(tok)
		var got []*tsdv1.Rollout
		var err error
		if algo == AlgoMCTS { // one tree at a time, so the search is reproducible
			for i, task := range ts {
				var r *tsdv1.Rollout
				r, err = p.searchOne(context.Background(), pol, pol, task, uint64(i))
				got = append(got, r)
			}
		} else {
			got, err = p.Produce(context.Background(), pol, pol, ts)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			checkRollout(t, algo, cfg, tok, ts[i], r)
			r.CreatedUnixMs = 0
			if algo == AlgoMCTS {
				r.Search.WallMs = 0
			}
			b, err := protojson.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			dump = append(append(dump, b...), '\n')
		}
	}
	if path := os.Getenv("TSD_DUMP_ROLLOUTS"); path != "" {
		if err := os.WriteFile(path, dump, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func checkRollout(t *testing.T, algo string, cfg Config, tok *tokenizer.BPE, task Task, r *tsdv1.Rollout) {
	t.Helper()
	want := map[string]int{AlgoMCTS: 1, AlgoGroup: cfg.GroupSize, AlgoBestOfN: 1}[algo]
	if r.GetPromptId() != task.ID || !slices.Equal(r.GetPromptIds(), task.Prompt) || len(r.GetSamples()) != want || r.GetPolicyVersion() != 3 {
		t.Fatalf("%s rollout %s: %d samples, version %d", algo, r.GetPromptId(), len(r.GetSamples()), r.GetPolicyVersion())
	}
	var generated int64
	for _, s := range r.GetSamples() {
		text := tok.Decode(s.GetCompletionIds())
		g := countdown.Grade(task.Task.(countdown.Task).Problem, text)
		if s.GetReward() != float32(g.Reward) || s.GetCorrect() != g.Correct {
			t.Errorf("%s: reward %v correct %v, the task grades %q %+v", algo, s.GetReward(), s.GetCorrect(), text, g)
		}
		if n := len(s.GetCompletionIds()); len(s.GetLogprobs()) != n || len(s.GetValues()) != n || n == 0 {
			t.Errorf("%s: %d tokens, %d log-probs, %d values", algo, n, len(s.GetLogprobs()), len(s.GetValues()))
		}
		if algo != AlgoMCTS && !slices.Equal(s.GetStepEnds(), episode.StepEnds(tok, s.GetCompletionIds(), countdown.StepClose)) {
			t.Errorf("%s: step ends %v", algo, s.GetStepEnds())
		}
		generated += int64(len(s.GetCompletionIds()))
	}
	switch algo {
	case AlgoMCTS:
		if r.GetAlgo() != tsdv1.Algo_ALGO_MCTS || r.GetSearch().GetSimulations() != int64(cfg.Search.Simulations()) || r.GetGeneratedTokens() < generated {
			t.Errorf("search rollout: %v, %d simulations, %d generated for a %d-token trajectory", r.GetAlgo(), r.GetSearch().GetSimulations(), r.GetGeneratedTokens(), generated)
		}
	case AlgoGroup:
		if r.GetAlgo() != tsdv1.Algo_ALGO_GROUP || r.GetGeneratedTokens() != generated {
			t.Errorf("group rollout: %v, %d generated, samples hold %d", r.GetAlgo(), r.GetGeneratedTokens(), generated)
		}
	case AlgoBestOfN:
		if r.GetAlgo() != tsdv1.Algo_ALGO_BEST_OF_N || r.GetGeneratedTokens() < generated {
			t.Errorf("best-of-n rollout: %v, %d generated", r.GetAlgo(), r.GetGeneratedTokens())
		}
	}
}
