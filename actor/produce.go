package actor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"tsd/episode"
	"tsd/mcts"
	"tsd/model"
	"tsd/policy"
	"tsd/proto/tsd/v1"
	"tsd/tokenizer"
)

// Task is one problem to produce a rollout for.
type Task struct {
	ID     string
	Task   episode.Task
	Prompt []int32 // episode.Prompt of Task
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
	cfg := p.cfg.Search
	cfg.Seed = cfg.Seed*1_000_003 + hashString(t.ID) + salt
	ep, err := episode.Search(ctx, pol, batcher, t.Task, t.Prompt, cfg)
	if err != nil {
		return nil, err
	}
	tr := ep.Trajectory
	ends := make([]int32, len(tr.StepEnds))
	for i, e := range tr.StepEnds {
		ends[i] = int32(e)
	}
	st := ep.Stats
	return &tsdv1.Rollout{
		PolicyVersion: pol.Version(), PromptId: t.ID, PromptIds: t.Prompt, Algo: tsdv1.Algo_ALGO_MCTS,
		Samples: []*tsdv1.Sample{{
			CompletionIds: tr.Tokens, Logprobs: tr.LogProbs, Values: tr.Values, StepEnds: ends,
			Reward: float32(tr.Reward), Correct: ep.Correct, Finished: tr.Terminal,
		}},
		Search: &tsdv1.SearchStats{Simulations: int64(st.Simulations), MaxDepth: int32(st.MaxDepth),
			TreeNodes: int64(st.Nodes), WallMs: st.Wall.Milliseconds(), ModelCalls: int64(st.Expansions)},
		GeneratedTokens: ep.Generated, CreatedUnixMs: time.Now().UnixMilli(),
	}, nil
}

// sample draws n completions per task; best keeps only the one with the highest dense reward.
func (p *Producer) sample(ctx context.Context, pol *policy.Policy, tasks []Task, n int, temp float64, best bool) ([]*tsdv1.Rollout, error) {
	prompts := make([][]int32, len(tasks))
	ts := make([]episode.Task, len(tasks))
	for i, t := range tasks {
		prompts[i], ts[i] = t.Prompt, t.Task
	}
	opts := model.SampleOptions{Temperature: temp, TopP: 1, MaxNewTokens: p.cfg.MaxNewTokens, Values: true,
		Seed: p.cfg.Seed*1_000_003 + int64(hashString(tasks[0].ID)>>1)}
	eps, err := episode.Sample(ctx, pol, p.tok, ts, prompts, n, opts)
	if err != nil {
		return nil, err
	}
	out := make([]*tsdv1.Rollout, len(tasks))
	for i, t := range tasks {
		r := &tsdv1.Rollout{PolicyVersion: pol.Version(), PromptId: t.ID, PromptIds: t.Prompt,
			Algo: tsdv1.Algo_ALGO_GROUP, CreatedUnixMs: time.Now().UnixMilli()}
		for _, ep := range eps[i] {
			r.GeneratedTokens += ep.Generated
			r.Samples = append(r.Samples, p.sampleOf(t.Task, ep))
		}
		if best {
			r.Algo = tsdv1.Algo_ALGO_BEST_OF_N
			r.Samples = []*tsdv1.Sample{bestSample(r.Samples)}
		}
		out[i] = r
	}
	return out, nil
}

// sampleOf is a graded completion as the wire carries it, its reasoning steps marked.
func (p *Producer) sampleOf(t episode.Task, ep episode.Sampled) *tsdv1.Sample {
	return &tsdv1.Sample{CompletionIds: ep.Completion.Tokens, Logprobs: ep.LogProbs, Values: ep.Values,
		StepEnds: episode.StepEnds(p.tok, ep.Completion.Tokens, t.StepStop()), Reward: float32(ep.Reward), Correct: ep.Correct,
		Finished: ep.Stop == model.StopEOS}
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
