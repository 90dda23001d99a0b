package eval

import (
	"context"
	"sync"
	"time"

	"tsd/countdown"
	"tsd/episode"
	"tsd/mcts"
	"tsd/tokenizer"
)

// Searcher is what a search needs of the model: steps, and registering prompts so their KV cache is
// reused (policy.Policy implements it).
type Searcher interface {
	mcts.Stepper
	episode.Holder
}

// RunSearch is Run with MCTS at test time: each of the K samples of a problem is the chosen
// trajectory of its own search (seeded differently), graded like a sampled completion. Its token
// count is every token the search generated, so it compares with Run at equal token budgets.
// cfg.Batch problems are searched at once, their model calls batched together.
func RunSearch(ctx context.Context, s Searcher, tok *tokenizer.BPE, problems []countdown.Problem, cfg Config, search mcts.Config, keep bool, progress Progress) (Summary, []Problem, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, nil, err
	}
	if err := search.Validate(); err != nil {
		return Summary{}, nil, err
	}
	batcher, err := mcts.NewBatcher(s, mcts.DefaultBatchConfig())
	if err != nil {
		return Summary{}, nil, err
	}
	bctx, stop := context.WithCancel(ctx)
	defer stop()
	go batcher.Run(bctx) //nolint:errcheck // ends with bctx
	start := time.Now()
	results := make([]Problem, 0, len(problems))
	var acc accumulator
	for lo := 0; lo < len(problems); lo += cfg.Batch {
		hi := min(lo+cfg.Batch, len(problems))
		batch := make([]Problem, hi-lo)
		errs := make([]error, hi-lo)
		var wg sync.WaitGroup
		for i := range batch {
			wg.Add(1)
			go func() {
				defer wg.Done()
				batch[i], errs[i] = searchProblem(ctx, s, batcher, tok, lo+i, problems[lo+i], cfg, search, keep)
			}()
		}
		wg.Wait()
		for i, r := range batch {
			if errs[i] != nil {
				return Summary{}, nil, errs[i]
			}
			acc.add(r)
			results = append(results, r)
		}
		if progress != nil {
			progress(hi, acc.summary(cfg, time.Since(start), true))
		}
	}
	return acc.summary(cfg, time.Since(start), true), results, nil
}

func searchProblem(ctx context.Context, s Searcher, batcher *mcts.Batcher, tok *tokenizer.BPE, index int, p countdown.Problem, cfg Config, search mcts.Config, keep bool) (Problem, error) {
	t := cfg.Style.Task(p)
	prompt := episode.Prompt(tok, t)
	s.Hold(prompt) // one prompt cache for all K searches
	defer s.Release(prompt)
	r := Problem{Index: index, Problem: p}
	for k := range cfg.K {
		sc := search
		sc.Seed = uint64(cfg.Seed)*7919 + uint64(index)*104729 + uint64(k)
		ep, err := episode.Search(ctx, s, batcher, t, prompt, sc)
		if err != nil {
			return Problem{}, err
		}
		r.add(ep.Graded, keep)
	}
	r.finish()
	return r, nil
}
