package model

import (
	"fmt"
	"tsd/tensor"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Cache is a batch of sequences being decoded: per layer the keys and values of every column seen,
// which columns hold real tokens, and each row's next position and last logits and hidden state.
//
// Rows may be padded anywhere: a row's columns are [pads][tokens][pads][tokens]..., and padding
// columns are never attended to and take no position, so rows of different lengths (left padding)
// and rows extended by different numbers of tokens (padding in the middle) decode exactly as they
// would alone. The tree search relies on this: it concatenates the caches of several prompts, extends
// each by its own reasoning steps, and forks every row into K samples with Select.
//
// A Cache owns its tensors; Close frees them. It is tied to the model that made it.
type Cache struct {
	m      *Qwen2
	k, v   []*ts.Tensor // per layer (B, nkv, T, hd)
	valid  [][]bool     // (B, T): real token (true) or padding
	next   []int64      // (B): position of each row's next token
	last   *ts.Tensor   // (B, V) f32 logits after each row's last token; nil after Trim
	hidden *ts.Tensor   // (B, H) final hidden state at each row's last token; nil after Trim
	broken bool         // a forward pass failed half way: the layers disagree
}

// NewCache returns an empty cache of batch rows.
func (m *Qwen2) NewCache(batch int) *Cache {
	c := &Cache{m: m, k: make([]*ts.Tensor, m.cfg.NumHiddenLayers), v: make([]*ts.Tensor, m.cfg.NumHiddenLayers)}
	c.valid = make([][]bool, batch)
	c.next = make([]int64, batch)
	return c
}

// Rows is the batch size.
func (c *Cache) Rows() int { return len(c.valid) }

// Len is the number of columns, padding included.
func (c *Cache) Len() int {
	if len(c.valid) == 0 {
		return 0
	}
	return len(c.valid[0])
}

// Tokens returns how many real tokens row holds.
func (c *Cache) Tokens(row int) int { return int(c.next[row]) }

// Close frees the cache's tensors.
func (c *Cache) Close() {
	for i := range c.k {
		dropNil(&c.k[i])
		dropNil(&c.v[i])
	}
	dropNil(&c.last)
	dropNil(&c.hidden)
}

func dropNil(x **ts.Tensor) {
	if *x != nil {
		(*x).MustDrop()
		*x = nil
	}
}

// Prefill runs the model over seqs (one row each, at least one token each) and returns their cache.
func (m *Qwen2) Prefill(seqs [][]int32) (*Cache, error) {
	for i, s := range seqs {
		if len(s) == 0 {
			return nil, fmt.Errorf("%w: sequence %d is empty", ErrInput, i)
		}
	}
	c := m.NewCache(len(seqs))
	if err := m.Extend(c, seqs); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Extend appends toks[row] to each row (a row may get none) and runs the model over them.
func (m *Qwen2) Extend(c *Cache, toks [][]int32) (err error) {
	if err := m.checkCache(c, toks); err != nil {
		return err
	}
	S := 0
	for _, t := range toks {
		S = max(S, len(t))
	}
	if S == 0 {
		return nil
	}
	defer tensor.Catch(&err)
	defer func() {
		if err != nil {
			c.broken = true
		}
	}()
	var tp tensor.Scope
	defer tp.Free()
	tensor.NoGrad(func() { m.extend(&tp, c, toks, S) })
	return nil
}

func (m *Qwen2) checkCache(c *Cache, toks [][]int32) error {
	if c.m != m {
		return fmt.Errorf("%w: cache belongs to another model", ErrInput)
	}
	if c.broken {
		return fmt.Errorf("%w: cache is unusable after a failed forward pass", ErrInput)
	}
	if len(toks) != c.Rows() {
		return fmt.Errorf("%w: %d token rows for a cache of %d", ErrInput, len(toks), c.Rows())
	}
	V := int32(m.cfg.VocabSize)
	for r, t := range toks {
		for _, id := range t {
			if id < 0 || id >= V {
				return fmt.Errorf("%w: row %d: token id %d outside the vocabulary [0, %d)", ErrInput, r, id, V)
			}
		}
	}
	return nil
}

// extend runs the new tokens through the model and records each row's last logits and hidden state.
func (m *Qwen2) extend(tp *tensor.Scope, c *Cache, toks [][]int32, S int) {
	h := m.forwardNew(tp, c, toks, S)                                     // (B, S, H)
	lastH := tp.T(tp.T(h.Select(1, int64(S-1), false)).Contiguous(false)) // (B, H)
	c.setLast(tp, toks, lastH, m.logits(tp, lastH))                       // logits (B, V)
}

// forwardNew right-aligns the new tokens in S columns (shorter rows get padding first, so every
// row's last real token is in the last column unless it got none), appends them to c, and returns
// their final hidden states (B, S, H).
func (m *Qwen2) forwardNew(tp *tensor.Scope, c *Cache, toks [][]int32, S int) *ts.Tensor {
	B := c.Rows()
	ids := make([]int64, B*S)
	pos := make([]int64, B*S)
	for r, t := range toks {
		off := S - len(t)
		newValid := make([]bool, S)
		for j, id := range t {
			ids[r*S+off+j] = int64(id)
			pos[r*S+off+j] = c.next[r]
			newValid[off+j] = true
			c.next[r]++
		}
		c.valid[r] = append(c.valid[r], newValid...)
	}
	maxPos := int64(0)
	for _, p := range pos {
		maxPos = max(maxPos, p)
	}
	idT := tensor.FromInt64s(tp, ids, []int64{int64(B), int64(S)}, m.dev)
	posT := tensor.FromInt64s(tp, pos, []int64{int64(B), int64(S)}, m.dev)
	return m.forward(tp, idT, posT, maxPos, attnBias(tp, c.valid, S, m.dev), c)
}

// setLast records each row's last logits and hidden state; rows that got no tokens keep theirs.
func (c *Cache) setLast(tp *tensor.Scope, toks [][]int32, h, logits *ts.Tensor) {
	keep := make([]bool, len(toks))
	anyKept := false
	for r, t := range toks {
		keep[r] = len(t) == 0
		anyKept = anyKept || keep[r]
	}
	if anyKept && c.last != nil {
		mask := tensor.FromBools(tp, keep, c.m.dev)                                    // (B)
		h = tp.T(c.hidden.WhereSelf(tp.T(mask.Unsqueeze(1, false)), h, false))         // (B, H)
		logits = tp.T(c.last.WhereSelf(tp.T(mask.Unsqueeze(1, false)), logits, false)) // (B, V)
	}
	dropNil(&c.last)
	dropNil(&c.hidden)
	c.hidden, c.last = tp.Detach(h), tp.Detach(logits)
}

// append adds one layer's new keys and values (B, nkv, S, hd) and returns all of them (B, nkv, T, hd).
func (c *Cache) append(tp *tensor.Scope, layer int, k, v *ts.Tensor) (*ts.Tensor, *ts.Tensor) {
	if c.k[layer] == nil {
		c.k[layer], c.v[layer] = tp.Detach(tp.T(k.Contiguous(false))), tp.Detach(tp.T(v.Contiguous(false)))
		return c.k[layer], c.v[layer]
	}
	nk := tp.T(ts.Cat([]*ts.Tensor{c.k[layer], k}, 2))
	nv := tp.T(ts.Cat([]*ts.Tensor{c.v[layer], v}, 2))
	c.k[layer].MustDrop()
	c.v[layer].MustDrop()
	c.k[layer], c.v[layer] = tp.Detach(nk), tp.Detach(nv)
	return nk, nv
}

// attnBias builds the additive attention mask (B, 1, 1, S, T) for S new columns at the end of T:
// 0 where the key column holds a real token at or before the query column, −1e30 elsewhere. It is
// nil when nothing needs masking (one new column, no padding): the common decoding step.
func attnBias(tp *tensor.Scope, valid [][]bool, S int, dev gotch.Device) *ts.Tensor {
	B, T := len(valid), len(valid[0])
	if S == 1 && allTrue(valid) {
		return nil
	}
	keys := make([]float32, B*T)
	for r, row := range valid {
		for t, ok := range row {
			if ok {
				keys[r*T+t] = 1
			}
		}
	}
	allowed := tensor.FromFloat32s(tp, keys, []int64{int64(B), 1, 1, 1, int64(T)}, dev)
	if S > 1 {
		causal := make([]float32, S*T)
		for s := 0; s < S; s++ {
			for t := 0; t <= T-S+s; t++ {
				causal[s*T+t] = 1
			}
		}
		allowed = tp.T(allowed.Mul(tensor.FromFloat32s(tp, causal, []int64{1, 1, 1, int64(S), int64(T)}, dev), false))
	}
	one, big := ts.FloatScalar(1), ts.FloatScalar(1e30)
	defer one.MustDrop()
	defer big.MustDrop()
	return tp.T(tp.T(allowed.SubScalar(one, false)).MulScalar(big, false)) // 0 or −1e30
}

func allTrue(rows [][]bool) bool {
	for _, row := range rows {
		for _, ok := range row {
			if !ok {
				return false
			}
		}
	}
	return true
}

// Select returns a new cache holding the given rows of c, in order; a row may be taken many times
// (one prompt forked into K samples).
func (c *Cache) Select(rows []int) (out *Cache, err error) {
	for _, r := range rows {
		if r < 0 || r >= c.Rows() {
			return nil, fmt.Errorf("%w: row %d of a cache of %d", ErrInput, r, c.Rows())
		}
	}
	if c.broken {
		return nil, fmt.Errorf("%w: cache is unusable after a failed forward pass", ErrInput)
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	idx := make([]int64, len(rows))
	out = c.m.NewCache(len(rows))
	for i, r := range rows {
		idx[i] = int64(r)
		out.valid[i] = append([]bool(nil), c.valid[r]...)
		out.next[i] = c.next[r]
	}
	idxT := tensor.FromInt64s(&tp, idx, []int64{int64(len(idx))}, c.m.dev)
	pick := func(x *ts.Tensor) *ts.Tensor {
		if x == nil {
			return nil
		}
		return tp.Detach(tp.T(x.IndexSelect(0, idxT, false)))
	}
	for l := range c.k {
		out.k[l], out.v[l] = pick(c.k[l]), pick(c.v[l])
	}
	out.last, out.hidden = pick(c.last), pick(c.hidden)
	return out, nil
}

// Concat stacks caches of the same model into one batch, left-padding shorter ones.
func Concat(caches []*Cache) (out *Cache, err error) {
	if len(caches) == 0 {
		return nil, fmt.Errorf("%w: no caches to concatenate", ErrInput)
	}
	m := caches[0].m
	T, B := 0, 0
	for _, c := range caches {
		if c.m != m || c.broken || c.last == nil {
			return nil, fmt.Errorf("%w: caches must come from one model, be intact and untrimmed", ErrInput)
		}
		T, B = max(T, c.Len()), B+c.Rows()
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	out = m.NewCache(B)
	row := 0
	for _, c := range caches {
		pad := T - c.Len()
		for r := range c.valid {
			out.valid[row] = append(make([]bool, pad), c.valid[r]...)
			out.next[row] = c.next[r]
			row++
		}
	}
	cat := func(get func(*Cache) *ts.Tensor, padDim bool) *ts.Tensor {
		parts := make([]*ts.Tensor, len(caches))
		for i, c := range caches {
			parts[i] = get(c)
			if pad := int64(T - c.Len()); padDim && pad > 0 {
				parts[i] = tp.T(parts[i].ConstantPadNd([]int64{0, 0, pad, 0}, false)) // zeros before, on T
			}
		}
		return tp.Detach(tp.T(ts.Cat(parts, 0)))
	}
	for l := range out.k {
		out.k[l] = cat(func(c *Cache) *ts.Tensor { return c.k[l] }, true)
		out.v[l] = cat(func(c *Cache) *ts.Tensor { return c.v[l] }, true)
	}
	out.last = cat(func(c *Cache) *ts.Tensor { return c.last }, false)
	out.hidden = cat(func(c *Cache) *ts.Tensor { return c.hidden }, false)
	return out, nil
}

// Trim keeps the first n columns. The last logits are then unknown: Extend the cache before
// sampling from it again.
func (c *Cache) Trim(n int) (err error) {
	if n < 0 || n > c.Len() {
		return fmt.Errorf("%w: trim to %d columns of %d", ErrInput, n, c.Len())
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	for l := range c.k {
		if c.k[l] == nil {
			continue
		}
		nk := tp.Detach(tp.T(tp.T(c.k[l].Narrow(2, 0, int64(n), false)).Contiguous(false)))
		nv := tp.Detach(tp.T(tp.T(c.v[l].Narrow(2, 0, int64(n), false)).Contiguous(false)))
		c.k[l].MustDrop()
		c.v[l].MustDrop()
		c.k[l], c.v[l] = nk, nv
	}
	for r := range c.valid {
		c.valid[r] = c.valid[r][:n]
		c.next[r] = 0
		for _, ok := range c.valid[r] {
			if ok {
				c.next[r]++
			}
		}
	}
	dropNil(&c.last)
	dropNil(&c.hidden)
	return nil
}
