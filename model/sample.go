package model

import (
	"fmt"
	"math"
	"strings"
	"tsd/tensor"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// SampleOptions control decoding.
type SampleOptions struct {
	Temperature  float64  // 0 = greedy
	TopP         float64  // nucleus mass in (0, 1]; 0 means 1
	TopK         int      // 0 = no limit
	MaxNewTokens int      // > 0
	EOS          []int32  // a row stops after emitting one of these
	Stop         []string // a row stops once its decoded new text contains one of these
	Seed         int64    // seeds libtorch's generator for this call
	Values       bool     // also return the value head after every new token
}

// Decoder turns token ids back into text, for stop strings (the tokenizer implements it).
type Decoder interface {
	Decode(ids []int32) string
}

// StopReason says why a completion ended.
type StopReason int

// Why a row stopped.
const (
	StopLength StopReason = iota // MaxNewTokens reached
	StopEOS                      // emitted an EOS id
	StopString                   // its text contains a stop string
)

// Completion is what sampling produced for one row.
type Completion struct {
	Tokens   []int32
	LogProbs []float32 // log π(token | prefix) at temperature 1 (the behaviour log-prob PPO needs)
	Values   []float32 // value head after each token (when SampleOptions.Values)
	Hidden   []float32 // final hidden state at the last token (H)
	Stop     StopReason
}

func (o SampleOptions) validate(dec Decoder) error {
	switch {
	case o.Temperature < 0 || math.IsNaN(o.Temperature):
		return fmt.Errorf("%w: temperature %v < 0", ErrInput, o.Temperature)
	case o.TopP < 0 || o.TopP > 1 || math.IsNaN(o.TopP):
		return fmt.Errorf("%w: top-p %v outside (0, 1]", ErrInput, o.TopP)
	case o.TopK < 0:
		return fmt.Errorf("%w: top-k %d < 0", ErrInput, o.TopK)
	case o.MaxNewTokens <= 0:
		return fmt.Errorf("%w: max new tokens %d <= 0", ErrInput, o.MaxNewTokens)
	case len(o.Stop) > 0 && dec == nil:
		return fmt.Errorf("%w: stop strings need a decoder", ErrInput)
	}
	return nil
}

// Generate samples a continuation for every row of c. It uses c up: afterwards c may hold some of
// the continuation, and the caller must only Close it. Rows that stop early are masked out and, once
// at most half the batch is still running, dropped from the computation.
func (m *Qwen2) Generate(c *Cache, opts SampleOptions, dec Decoder) (out []Completion, err error) {
	if err := opts.validate(dec); err != nil {
		return nil, err
	}
	if c.m != m || c.broken || c.last == nil {
		return nil, fmt.Errorf("%w: generate needs an intact cache with its last logits (Prefill or Extend first)", ErrInput)
	}
	defer tensor.Catch(&err)
	ts.ManualSeed(opts.Seed)
	g := &generation{m: m, opts: opts, dec: dec, out: make([]Completion, c.Rows())}
	g.rows = make([]int, c.Rows())
	for i := range g.rows {
		g.rows[i] = i
	}
	g.cache = c
	defer g.closeCopy()
	tensor.NoGrad(g.run)
	return g.out, nil
}

// generation is the state of one Generate call.
type generation struct {
	m     *Qwen2
	opts  SampleOptions
	dec   Decoder
	out   []Completion
	cache *Cache // the live batch: the caller's cache, or a compacted copy of its running rows
	copy  bool   // cache is a compacted copy, owned here
	rows  []int  // out index of each live cache row
}

func (g *generation) run() {
	for step := 0; step < g.opts.MaxNewTokens; step++ {
		toks, lps := g.sample()
		next := make([][]int32, len(g.rows))
		running := 0
		for i, r := range g.rows {
			if g.done(r) {
				continue
			}
			comp := &g.out[r]
			comp.Tokens = append(comp.Tokens, toks[i])
			comp.LogProbs = append(comp.LogProbs, lps[i])
			next[i] = []int32{toks[i]}
			g.checkStop(r)
			if !g.done(r) {
				running++
			}
		}
		g.advance(next)
		if running == 0 {
			break
		}
		g.compact(running)
	}
	g.finish()
}

func (g *generation) done(r int) bool {
	c := g.out[r]
	return c.Stop != StopLength || len(c.Tokens) >= g.opts.MaxNewTokens
}

// checkStop marks row r stopped by EOS or a stop string.
func (g *generation) checkStop(r int) {
	c := &g.out[r]
	last := c.Tokens[len(c.Tokens)-1]
	for _, e := range g.opts.EOS {
		if last == e {
			c.Stop = StopEOS
			return
		}
	}
	if len(g.opts.Stop) == 0 {
		return
	}
	text := g.dec.Decode(c.Tokens)
	for _, s := range g.opts.Stop {
		if strings.Contains(text, s) {
			c.Stop = StopString
			return
		}
	}
}

// advance feeds each row's new token (rows that were already done get none) and records values.
func (g *generation) advance(next [][]int32) {
	var tp tensor.Scope
	defer tp.Free()
	g.m.extend(&tp, g.cache, next, 1)
	if !g.opts.Values {
		return
	}
	vals := tensor.Float32s(g.m.valueOf(&tp, g.cache.hidden)) // (B)
	for i, r := range g.rows {
		if next[i] != nil {
			g.out[r].Values = append(g.out[r].Values, vals[i])
		}
	}
}

// sample draws one token per live row from the cache's last logits (B, V), on the device: top-k and
// top-p filter the tempered logits, then the Gumbel-max trick samples (argmax(z + G), G = −log(−log U)).
// It also returns each token's log-prob at temperature 1.
func (g *generation) sample() ([]int32, []float32) {
	var tp tensor.Scope
	defer tp.Free()
	logits := g.cache.last // (B, V)
	logp := tp.T(logits.LogSoftmax(-1, g.m.acc(), false))
	var next *ts.Tensor
	if g.opts.Temperature == 0 {
		next = tp.T(logits.Argmax([]int64{-1}, true, false)) // (B, 1)
	} else {
		z := tp.T(logits.DivScalar(tp.Scalar(g.opts.Temperature), false))
		z = filterTopK(&tp, z, g.opts.TopK)
		z = filterTopP(&tp, z, g.opts.TopP, g.m.acc())
		u := tp.T(tp.T(z.RandLike(false)).ClampMin(tp.Scalar(1e-20), false))
		gumbel := tp.T(tp.T(tp.T(u.Log(false)).Neg(false)).Log(false)) // log(−log U) = −G
		next = tp.T(tp.T(z.Sub(gumbel, false)).Argmax([]int64{-1}, true, false))
	}
	lp := tensor.Float32s(tp.T(logp.Gather(-1, next, false, false))) // (B, 1)
	ids := tensor.Int64s(next)
	toks := make([]int32, len(ids))
	for i, id := range ids {
		toks[i] = int32(id)
	}
	return toks, lp
}

// filterTopK keeps the k largest logits of each row (others become −∞).
func filterTopK(tp *tensor.Scope, z *ts.Tensor, k int) *ts.Tensor {
	shape, _ := z.Size()
	if k <= 0 || int64(k) >= shape[1] {
		return z
	}
	vals, _ := tp.T2(z.Topk(int64(k), -1, true, true, false))
	kth := tp.T(vals.Narrow(-1, int64(k-1), 1, false)) // (B, 1)
	return tp.T(z.MaskedFill(tp.T(z.LtTensor(kth, false)), tp.Scalar(math.Inf(-1)), false))
}

// filterTopP keeps the smallest set of most likely tokens whose probability reaches p.
func filterTopP(tp *tensor.Scope, z *ts.Tensor, p float64, acc gotch.DType) *ts.Tensor {
	if p <= 0 || p >= 1 {
		return z
	}
	sorted, idx := tp.T2(z.Sort(-1, true, false))
	probs := tp.T(sorted.Softmax(-1, acc, false))
	before := tp.T(tp.T(probs.Cumsum(-1, acc, false)).Sub(probs, false)) // mass strictly before each token
	drop := tp.T(before.Gt(tp.Scalar(p), false))
	sorted = tp.T(sorted.MaskedFill(drop, tp.Scalar(math.Inf(-1)), false))
	return tp.T(tp.T(z.EmptyLike(false)).Scatter(-1, idx, sorted, false))
}

// compact drops finished rows from the batch once at most half of it is running.
func (g *generation) compact(running int) {
	if running*2 > len(g.rows) || len(g.rows) < 4 {
		return
	}
	var keep, rows []int
	for i, r := range g.rows {
		if !g.done(r) {
			keep = append(keep, i)
			rows = append(rows, r)
		}
	}
	g.copyHidden()
	small, err := g.cache.Select(keep)
	if err != nil {
		tensor.Check(err)
	}
	g.closeCopy()
	g.cache, g.rows, g.copy = small, rows, true
}

// copyHidden saves the final hidden state of rows that are done before they leave the batch.
func (g *generation) copyHidden() {
	h := tensor.Float32s(g.cache.hidden) // (B·H)
	H := g.m.cfg.HiddenSize
	for i, r := range g.rows {
		if g.done(r) && g.out[r].Hidden == nil {
			g.out[r].Hidden = h[i*H : (i+1)*H : (i+1)*H]
		}
	}
}

func (g *generation) finish() {
	g.copyHidden()
}

// closeCopy frees a compacted copy (the caller owns its own cache).
func (g *generation) closeCopy() {
	if g.copy {
		g.cache.Close()
		g.copy = false
	}
}
