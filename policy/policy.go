// Package policy is the model as the actors and the evaluator use it: reasoning steps for the
// tree search, whole completions for the baselines and evaluation, all run on one tensor.Worker.
// It knows no task; package episode puts the task's prompts to it.
package policy

import (
	"context"
	"encoding/binary"
	"hash/fnv"

	"tsd/mcts"
	"tsd/model"
	"tsd/tensor"
	"tsd/tokenizer"
)

// Policy is the model as the actor uses it: it samples reasoning steps for the tree search
// (mcts.Stepper) and whole completions for the baselines. All tensor work runs on one tensor.Worker,
// so any goroutine may call it.
//
// Prompt reuse: each search registers its prompt; the prompt's KV cache is computed once and every
// expansion of that tree starts from a copy of it, recomputing only the steps after the prompt.
type Policy struct {
	w       *tensor.Worker
	m       *model.Qwen2
	tok     *tokenizer.BPE
	eos     []int32
	version uint64
	prompts map[string]*promptCache // prompt tokens (as a string key) → its cache; worker-only
	ownsW   bool                    // Close stops w (Open started it)
}

type promptCache struct {
	tokens []int32
	cache  *model.Cache // one row
	users  int          // searches currently using it
}

// Options say how Open loads a policy.
type Options struct {
	Model     model.Options
	Tokenizer *tokenizer.BPE // nil: the directory's tokenizer.json
	Worker    *tensor.Worker // nil: Open starts one, and Close stops it
	Version   uint64         // the policy version the weights are
}

// Open loads the model directory dir (config.json, weights and, unless opts.Tokenizer is set,
// tokenizer.json) onto a worker and wraps it: the one way the actor, the evaluator and the
// commands get a Policy from disk. On error nothing stays allocated.
func Open(ctx context.Context, dir string, opts Options) (*Policy, error) {
	tok := opts.Tokenizer
	if tok == nil {
		var err error
		if tok, err = tokenizer.Load(dir); err != nil {
			return nil, err
		}
	}
	w := opts.Worker
	if w == nil {
		w = tensor.NewWorker()
	}
	var m *model.Qwen2
	err := w.Do(ctx, func() error {
		var err error
		m, err = model.Load(dir, opts.Model)
		return err
	})
	if err != nil {
		if opts.Worker == nil {
			w.Close()
		}
		return nil, err
	}
	p := NewPolicy(w, m, tok, opts.Version)
	p.ownsW = opts.Worker == nil
	return p, nil
}

// NewPolicy wraps a loaded model. The Policy owns m from now on and closes it in Close.
func NewPolicy(w *tensor.Worker, m *model.Qwen2, tok *tokenizer.BPE, version uint64) *Policy {
	return &Policy{w: w, m: m, tok: tok, eos: eosIDs(tok), version: version, prompts: map[string]*promptCache{}}
}

// Tokenizer is the tokenizer the policy decodes with.
func (p *Policy) Tokenizer() *tokenizer.BPE { return p.tok }

// Version is the policy version of the weights.
func (p *Policy) Version() uint64 { return p.version }

// Close frees the model and the prompt caches, and stops the worker if Open started it.
func (p *Policy) Close() error {
	err := p.w.Do(context.Background(), func() error {
		for k, pc := range p.prompts {
			pc.cache.Close()
			delete(p.prompts, k)
		}
		p.m.Close()
		return nil
	})
	if p.ownsW {
		p.w.Close()
	}
	return err
}

// key names a prompt in the cache map.
func key(toks []int32) string {
	b := make([]byte, 4*len(toks))
	for i, t := range toks {
		binary.LittleEndian.PutUint32(b[4*i:], uint32(t))
	}
	return string(b)
}

// Hold registers a prompt whose expansions will follow; Release forgets it once its search ends.
func (p *Policy) Hold(prompt []int32) {
	p.w.Do(context.Background(), func() error { //nolint:errcheck // only fails once closed
		k := key(prompt)
		if pc, ok := p.prompts[k]; ok {
			pc.users++
			return nil
		}
		p.prompts[k] = &promptCache{tokens: append([]int32(nil), prompt...), users: 1}
		return nil
	})
}

// Release drops a prompt registered with Hold.
func (p *Policy) Release(prompt []int32) {
	p.w.Do(context.Background(), func() error { //nolint:errcheck // only fails once closed
		k := key(prompt)
		if pc, ok := p.prompts[k]; ok {
			if pc.users--; pc.users == 0 {
				if pc.cache != nil {
					pc.cache.Close()
				}
				delete(p.prompts, k)
			}
		}
		return nil
	})
}

var _ mcts.Stepper = (*Policy)(nil)

// Step samples Samples continuations of each request's prefix, one reasoning step each.
func (p *Policy) Step(ctx context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	if len(reqs) == 0 {
		return nil, nil
	}
	var out []mcts.StepResult
	err := p.w.Do(ctx, func() error {
		var err error
		out, err = p.step(reqs)
		return err
	})
	return out, err
}

func (p *Policy) step(reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	out := make([]mcts.StepResult, len(reqs))
	// Requests near the token budget ask for shorter steps: one Generate per step cap.
	for _, group := range byCap(reqs) {
		sub := make([]mcts.StepRequest, len(group))
		for j, i := range group {
			sub[j] = reqs[i]
		}
		res, err := p.stepSame(sub)
		if err != nil {
			return nil, err
		}
		for j, i := range group {
			out[i] = res[j]
		}
	}
	return out, nil
}

// byCap groups request indices by their sampling settings, in order of first appearance.
func byCap(reqs []mcts.StepRequest) [][]int {
	type settings struct {
		maxTokens int
		temp      float64
		stop      string
	}
	var order []settings
	groups := map[settings][]int{}
	for i, r := range reqs {
		k := settings{r.MaxTokens, r.Temperature, r.Stop}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], i)
	}
	out := make([][]int, len(order))
	for i, k := range order {
		out[i] = groups[k]
	}
	return out
}

// stepSame expands requests that share their sampling settings, in one batch.
func (p *Policy) stepSame(reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	batch, err := p.batchCache(reqs)
	if err != nil {
		return nil, err
	}
	defer batch.Close()
	var rows []int
	for i, r := range reqs {
		for range r.Samples {
			rows = append(rows, i)
		}
	}
	forked, err := batch.Select(rows)
	if err != nil {
		return nil, err
	}
	defer forked.Close()
	r0 := reqs[0]
	comps, err := p.m.Generate(forked, model.SampleOptions{
		Temperature: r0.Temperature, MaxNewTokens: r0.MaxTokens, EOS: p.eos,
		Stop: stopList(r0.Stop), Seed: seedOf(reqs), Values: true,
	}, p.tok)
	if err != nil {
		return nil, err
	}
	out := make([]mcts.StepResult, len(reqs))
	for j, c := range comps {
		i := rows[j]
		out[i].Continuations = append(out[i].Continuations, mcts.Continuation{
			Tokens: c.Tokens, LogProbs: c.LogProbs, Values: c.Values,
			EOS: c.Stop == model.StopEOS, Text: p.tok.Decode(c.Tokens),
		})
	}
	return out, nil
}

// batchCache builds a cache with one row per request: the prompt's cache, extended by the steps
// after the prompt. A request whose prompt was not registered with Hold is prefilled whole.
func (p *Policy) batchCache(reqs []mcts.StepRequest) (*model.Cache, error) {
	parts := make([]*model.Cache, len(reqs))
	suffixes := make([][]int32, len(reqs))
	var fresh []*model.Cache
	defer func() {
		for _, c := range fresh {
			c.Close()
		}
	}()
	for i, r := range reqs {
		pc := p.promptFor(r)
		if pc == nil {
			c, err := p.m.Prefill([][]int32{r.Prefix})
			if err != nil {
				return nil, err
			}
			fresh = append(fresh, c)
			parts[i] = c
			continue
		}
		if pc.cache == nil {
			c, err := p.m.Prefill([][]int32{pc.tokens})
			if err != nil {
				return nil, err
			}
			pc.cache = c
		}
		parts[i] = pc.cache
		suffixes[i] = r.Prefix[len(pc.tokens):]
	}
	batch, err := model.Concat(parts)
	if err != nil {
		return nil, err
	}
	if err := p.m.Extend(batch, suffixes); err != nil {
		batch.Close()
		return nil, err
	}
	return batch, nil
}

// promptFor finds the registered prompt of a request.
func (p *Policy) promptFor(r mcts.StepRequest) *promptCache {
	if r.PromptLen <= 0 || r.PromptLen > len(r.Prefix) {
		return nil
	}
	return p.prompts[key(r.Prefix[:r.PromptLen])]
}

// Sample draws n completions of each prompt (the baselines and evaluation).
func (p *Policy) Sample(ctx context.Context, prompts [][]int32, n int, opts model.SampleOptions) ([][]model.Completion, error) {
	var out [][]model.Completion
	err := p.w.Do(ctx, func() error {
		c, err := p.m.Prefill(prompts)
		if err != nil {
			return err
		}
		defer c.Close()
		var rows []int
		for i := range prompts {
			for range n {
				rows = append(rows, i)
			}
		}
		forked, err := c.Select(rows)
		if err != nil {
			return err
		}
		defer forked.Close()
		if opts.EOS == nil {
			opts.EOS = p.eos
		}
		comps, err := p.m.Generate(forked, opts, p.tok)
		if err != nil {
			return err
		}
		out = make([][]model.Completion, len(prompts))
		for j, comp := range comps {
			out[rows[j]] = append(out[rows[j]], comp)
		}
		return nil
	})
	return out, err
}

func stopList(s string) []string {
	if s == "" {
		return nil
	}
	return []string{s}
}

// seedOf derives the sampling seed of a batch from its requests' seeds. A batch's samples depend
// on every request in it, so searches are reproducible only when batches are (one tree, no
// concurrent searches).
func seedOf(reqs []mcts.StepRequest) int64 {
	h := fnv.New64a()
	for _, r := range reqs {
		var b [8]byte
		for i := range b {
			b[i] = byte(r.Seed >> (8 * i))
		}
		h.Write(b[:])
	}
	return int64(h.Sum64() >> 1)
}

// eosIDs are the ids that end a reply: the ChatML end of turn and the end of text.
func eosIDs(tok *tokenizer.BPE) []int32 {
	var ids []int32
	for _, s := range []string{tokenizer.IMEnd, tokenizer.EndOfText} {
		if id, ok := tok.SpecialID(s); ok {
			ids = append(ids, id)
		}
	}
	return ids
}
