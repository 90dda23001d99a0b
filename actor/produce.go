package actor

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"tsd/countdown"
	"tsd/mcts"
	"tsd/model"
	"tsd/policy"
	"tsd/proto/tsd/v1"
	"tsd/tokenizer"
)

// Task is one problem to produce a rollout for.
type Task struct {
	ID      string
	Problem countdown.Problem
	Prompt  []int32
}

// Producer turns tasks into rollouts with one algorithm: the tree search, G samples for the group
// baselines, or the best of N samples.
type Producer struct {
	cfg Config
	tok *tokenizer.BPE
}

// Produce makes one rollout per task, all with pol (one policy version for the whole wave).
func (p *Producer) Produce(ctx context.Context, pol *policy.Policy, batcher mcts.Stepper, tasks []Task) ([]*tsdv1.Rollout, error) {
	switch p.cfg.Algo {
	case AlgoMCTS:
		return p.search(ctx, pol, batcher, tasks)
	case AlgoGroup:
		return p.sample(ctx, pol, tasks, p.cfg.GroupSize, p.cfg.SampleTemperature, false)
	case AlgoBestOfN:
		return p.sample(ctx, pol, tasks, p.cfg.BestOfN, p.cfg.SampleTemperature, true)
	}
	return nil, fmt.Errorf("%w: algorithm %q", ErrConfig, p.cfg.Algo)
}

// search runs one tree per task concurrently over the shared batcher.
func (p *Producer) search(ctx context.Context, pol *policy.Policy, batcher mcts.Stepper, tasks []Task) ([]*tsdv1.Rollout, error) {
	out := make([]*tsdv1.Rollout, len(tasks))
	errs := make([]error, len(tasks))
	var wg sync.WaitGroup
	for i, t := range tasks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], errs[i] = p.searchOne(ctx, pol, batcher, t, uint64(i))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (p *Producer) searchOne(ctx context.Context, pol *policy.Policy, batcher mcts.Stepper, t Task, salt uint64) (*tsdv1.Rollout, error) {
	pol.Hold(t.Prompt)
	defer pol.Release(t.Prompt)
	cfg := p.cfg.Search
	cfg.Seed = cfg.Seed*1_000_003 + hashString(t.ID) + salt
	res, err := mcts.Search(ctx, cfg, t.Prompt, batcher, func(_ []int32, text string) float64 {
		return countdown.DenseReward(t.Problem, text)
	})
	if err != nil {
		return nil, err
	}
	tr := res.Trajectory
	ends := make([]int32, len(tr.StepEnds))
	for i, e := range tr.StepEnds {
		ends[i] = int32(e)
	}
	var generated int64
	for _, n := range res.Tree.Export().Nodes {
		generated += int64(n.Tokens)
	}
	st := res.Stats
	return &tsdv1.Rollout{
		PolicyVersion: pol.Version(), PromptId: t.ID, PromptIds: t.Prompt, Algo: tsdv1.Algo_ALGO_MCTS,
		Samples: []*tsdv1.Sample{{
			CompletionIds: tr.Tokens, Logprobs: tr.LogProbs, Values: tr.Values, StepEnds: ends,
			Reward: float32(tr.Reward), Correct: countdown.Correct(t.Problem, tr.Text), Finished: tr.Terminal,
		}},
		Search: &tsdv1.SearchStats{Simulations: int64(st.Simulations), MaxDepth: int32(st.MaxDepth),
			TreeNodes: int64(st.Nodes), WallMs: st.Wall.Milliseconds(), ModelCalls: int64(st.Expansions)},
		GeneratedTokens: generated, CreatedUnixMs: time.Now().UnixMilli(),
	}, nil
}

// sample draws n completions per task; best keeps only the one with the highest dense reward.
func (p *Producer) sample(ctx context.Context, pol *policy.Policy, tasks []Task, n int, temp float64, best bool) ([]*tsdv1.Rollout, error) {
	prompts := make([][]int32, len(tasks))
	for i, t := range tasks {
		prompts[i] = t.Prompt
	}
	opts := model.SampleOptions{Temperature: temp, TopP: 1, MaxNewTokens: p.cfg.MaxNewTokens, Values: true,
		Seed: p.cfg.Seed*1_000_003 + int64(hashString(tasks[0].ID)>>1)}
	comps, err := pol.Sample(ctx, prompts, n, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*tsdv1.Rollout, len(tasks))
	for i, t := range tasks {
		r := &tsdv1.Rollout{PolicyVersion: pol.Version(), PromptId: t.ID, PromptIds: t.Prompt,
			Algo: tsdv1.Algo_ALGO_GROUP, CreatedUnixMs: time.Now().UnixMilli()}
		for _, c := range comps[i] {
			r.GeneratedTokens += int64(len(c.Tokens))
			r.Samples = append(r.Samples, p.sampleOf(t.Problem, c))
		}
		if best {
			r.Algo = tsdv1.Algo_ALGO_BEST_OF_N
			r.Samples = []*tsdv1.Sample{bestSample(r.Samples)}
		}
		out[i] = r
	}
	return out, nil
}

// sampleOf grades a completion and marks its reasoning steps.
func (p *Producer) sampleOf(prob countdown.Problem, c model.Completion) *tsdv1.Sample {
	text := p.tok.Decode(c.Tokens)
	g := countdown.Grade(prob, text)
	return &tsdv1.Sample{CompletionIds: c.Tokens, Logprobs: c.LogProbs, Values: c.Values,
		StepEnds: stepEnds(p.tok, c.Tokens), Reward: float32(g.Reward), Correct: g.Correct, Finished: c.Stop == model.StopEOS}
}

// stepEnds returns the token offset just past each completed "</step>" in toks. Tokens are decoded
// one at a time: a character split across tokens decodes wrongly that way, but the marker is ASCII
// and survives.
func stepEnds(tok *tokenizer.BPE, toks []int32) []int32 {
	var ends []int32
	var text strings.Builder
	seen := 0
	for i := range toks {
		text.WriteString(tok.Decode(toks[i : i+1 : i+1]))
		if n := strings.Count(text.String(), tokenizer.StepClose); n > seen {
			seen = n
			ends = append(ends, int32(i+1))
		}
	}
	return ends
}

// bestSample is the sample with the highest dense reward (the first among equals).
func bestSample(ss []*tsdv1.Sample) *tsdv1.Sample {
	best := ss[0]
	for _, s := range ss[1:] {
		if s.GetReward() > best.GetReward() {
			best = s
		}
	}
	return best
}

func hashString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}
