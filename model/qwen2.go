package model

// The Qwen2 decoder (Hugging Face's Qwen2ForCausalLM) and the value head, in one file.
//
//	x₀ = E[ids]                                              (B, S, H)
//	for each layer:  h = x + Attn(RMSNorm(x));  x = h + MLP(RMSNorm(h))
//	logits = RMSNorm(x) · Wₗₘᵀ                                (B, S, V)   (Wₗₘ = E when tied)
//	value  = tanh(W₃ ReLU(W₂ ReLU(W₁ RMSNorm(x) + b₁) + b₂) + b₃)   (B, S)
//
// RMSNorm(x) = w ⊙ x / sqrt(mean(x²) + ε), computed in f32. Attention: q/k/v projections with bias,
// o without; rotary position embedding, rotate-half form (Su et al., arXiv 2104.09864); grouped-query
// attention (Ainslie et al., arXiv 2305.13245), each kv head serving nh/nkv consecutive query heads;
// softmax in f32 — or libtorch's fused scaled_dot_product_attention where it exists (2.x; see
// attendFused). MLP: down(SiLU(gate(h)) ⊙ up(h)).

import (
	"fmt"
	"math"
	"slices"
	"tsd/tensor"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// fusedAttention says whether this libtorch has scaled_dot_product_attention (2.0 and later: flash
// and memory-efficient kernels on CUDA, a fused kernel on CPU, neither materialising the score
// matrix). Against 1.13 the compat step stubs it (deploy/gotch) and attention runs as matmul,
// softmax, matmul.
var fusedAttention = !slices.Contains(libtch.StubbedOps, "atg_scaled_dot_product_attention")

// Qwen2 is a policy language model with a value head. It owns its weight tensors: Close frees them.
// Methods that run tensor ops must be called from a goroutine locked to its OS thread.
type Qwen2 struct {
	cfg    Config
	dev    gotch.Device
	dtype  gotch.DType // weights and activations: f32 on CPU, bf16 on CUDA
	embed  *ts.Tensor  // (V, H)
	layers []block
	norm   *ts.Tensor // (H)
	lmHead *ts.Tensor // (V, H); the same tensor as embed when tied
	value  valueHead
	rope   rope
	consts consts
	params []param // every weight, in checkpoint name order

	freshValue bool // Load found no value head and initialised one
	fused      bool // attention through scaled_dot_product_attention (fusedAttention)
}

// block holds one decoder layer's weights.
type block struct {
	attnNorm, mlpNorm *ts.Tensor // (H)
	q, k, v, o        *ts.Tensor // (nh·hd, H), (nkv·hd, H), (nkv·hd, H), (H, nh·hd)
	qb, kb, vb        *ts.Tensor // (nh·hd), (nkv·hd), (nkv·hd)
	gate, up, down    *ts.Tensor // (I, H), (I, H), (H, I)

	// Inference only (the model is not trainable): q, k, v fused into one projection with the
	// attention norm's weight and 1/√hd folded in (fuse.go).
	qkv, qkvb *ts.Tensor // ((nh+2nkv)·hd, H), ((nh+2nkv)·hd)
}

// valueHead is the source's MLP H → F → H → 1 with ReLU and a tanh output in [−1, 1].
type valueHead struct {
	w1, b1, w2, b2, w3, b3 *ts.Tensor // (F, H), (F), (H, F), (H), (1, H), (1)
}

// param names one weight and where it lives in the struct.
type param struct {
	name  string
	shape []int64
	ptr   **ts.Tensor
	kind  paramKind
}

type paramKind int

const (
	kindMatrix paramKind = iota // initialised N(0, 0.02)
	kindBias                    // initialised 0
	kindNorm                    // initialised 1
)

// consts are scalars used on every forward pass, made once (each libtorch scalar is a C allocation).
type consts struct {
	eps, attnScale *ts.Scalar
}

// newQwen2 lays out the parameter table for cfg; the tensors are filled by Load or Init.
func newQwen2(cfg Config, dev gotch.Device, dtype gotch.DType) *Qwen2 {
	m := &Qwen2{cfg: cfg, dev: dev, dtype: dtype, layers: make([]block, cfg.NumHiddenLayers), fused: fusedAttention}
	H, I, V := int64(cfg.HiddenSize), int64(cfg.IntermediateSize), int64(cfg.VocabSize)
	hd := int64(cfg.HeadDim())
	nh, nkv := int64(cfg.NumAttentionHeads), int64(cfg.NumKeyValueHeads)
	F := int64(cfg.ValueWidth())
	add := func(name string, kind paramKind, ptr **ts.Tensor, shape ...int64) {
		m.params = append(m.params, param{name: name, shape: shape, ptr: ptr, kind: kind})
	}
	add("model.embed_tokens.weight", kindMatrix, &m.embed, V, H)
	for i := range m.layers {
		b, p := &m.layers[i], fmt.Sprintf("model.layers.%d.", i)
		add(p+"input_layernorm.weight", kindNorm, &b.attnNorm, H)
		add(p+"post_attention_layernorm.weight", kindNorm, &b.mlpNorm, H)
		add(p+"self_attn.q_proj.weight", kindMatrix, &b.q, nh*hd, H)
		add(p+"self_attn.q_proj.bias", kindBias, &b.qb, nh*hd)
		add(p+"self_attn.k_proj.weight", kindMatrix, &b.k, nkv*hd, H)
		add(p+"self_attn.k_proj.bias", kindBias, &b.kb, nkv*hd)
		add(p+"self_attn.v_proj.weight", kindMatrix, &b.v, nkv*hd, H)
		add(p+"self_attn.v_proj.bias", kindBias, &b.vb, nkv*hd)
		add(p+"self_attn.o_proj.weight", kindMatrix, &b.o, H, nh*hd)
		add(p+"mlp.gate_proj.weight", kindMatrix, &b.gate, I, H)
		add(p+"mlp.up_proj.weight", kindMatrix, &b.up, I, H)
		add(p+"mlp.down_proj.weight", kindMatrix, &b.down, H, I)
	}
	add("model.norm.weight", kindNorm, &m.norm, H)
	if !cfg.TieWordEmbeddings {
		add("lm_head.weight", kindMatrix, &m.lmHead, V, H)
	}
	add("value_head.fc1.weight", kindMatrix, &m.value.w1, F, H)
	add("value_head.fc1.bias", kindBias, &m.value.b1, F)
	add("value_head.fc2.weight", kindMatrix, &m.value.w2, H, F)
	add("value_head.fc2.bias", kindBias, &m.value.b2, H)
	add("value_head.out.weight", kindMatrix, &m.value.w3, 1, H)
	add("value_head.out.bias", kindBias, &m.value.b3, 1)
	m.rope = rope{theta: cfg.RopeTheta, headDim: hd}
	m.consts = consts{eps: ts.FloatScalar(cfg.RMSNormEps), attnScale: ts.FloatScalar(1 / math.Sqrt(float64(hd)))}
	return m
}

// valueHeadPrefix marks the tensors transformers does not know (it ignores them on load).
const valueHeadPrefix = "value_head."

// Config returns the model's configuration.
func (m *Qwen2) Config() Config { return m.cfg }

// Device returns where the weights live.
func (m *Qwen2) Device() gotch.Device { return m.dev }

// Close frees every weight. The model must not be used afterwards.
func (m *Qwen2) Close() {
	m.unfuse()
	for _, p := range m.params {
		if *p.ptr != nil {
			(*p.ptr).MustDrop()
			*p.ptr = nil
		}
	}
	m.lmHead = nil
	m.rope.close()
	m.consts.eps.MustDrop()
	m.consts.attnScale.MustDrop()
}

// forward runs the decoder over the new columns ids (B, S). pos (B, S) holds each token's position
// (at most maxPos),
// bias (B, 1, 1, S, T) the additive attention mask over all T = cached + S columns (nil: every
// column may be attended to). When cache is not nil, each layer's keys and values are appended to
// it. It returns the final normed hidden states (B, S, H).
func (m *Qwen2) forward(tp *tensor.Scope, ids, pos *ts.Tensor, maxPos int64, bias *ts.Tensor, cache *Cache) *ts.Tensor {
	shape, _ := ids.Size()
	B, S, H := shape[0], shape[1], int64(m.cfg.HiddenSize)
	// The residual stream stays 2-D (B·S, H): projections are then single matrix products.
	x := tp.T(tp.T(ts.Embedding(m.embed, ids, -1, false, false)).View([]int64{B * S, H}, false)) // (B·S, H)
	cos, sin := m.rope.at(tp, pos, maxPos, m.dev, m.dtype)                                       // (B, 1, S, hd) each
	mask := bias
	if m.fused {
		mask = m.foldMask(tp, bias, B)
	}
	for i := range m.layers {
		b := &m.layers[i]
		h := tp.T(x.Add(m.attention(tp, b, x, B, S, cos, sin, mask, cache, i), false))
		x = tp.T(h.Add(m.mlp(tp, b, h), false))
	}
	return tp.T(m.rmsNorm(tp, x, m.norm).View([]int64{B, S, H}, false)) // (B, S, H)
}

// rmsNorm is w ⊙ x / sqrt(mean(x²) + ε), with the statistics in f32 as Hugging Face computes them;
// w nil skips the scaling (folded into the next projection).
func (m *Qwen2) rmsNorm(tp *tensor.Scope, x, w *ts.Tensor) *ts.Tensor {
	xf := m.toFloat(tp, x)
	ms := tp.T(tp.T(xf.Square(false)).MeanDim([]int64{-1}, true, m.acc(), false)) // (…, 1)
	inv := tp.T(tp.T(ms.AddScalar(m.consts.eps, false)).Rsqrt(false))
	y := m.toDType(tp, tp.T(xf.Mul(inv, false)))
	if w == nil {
		return y
	}
	return tp.T(y.Mul(w, false))
}

// attention is grouped-query causal self-attention over the new columns of x (B·S, H), the
// residual stream before its norm. mask is forward's bias, or foldMask of it on the fused path.
func (m *Qwen2) attention(tp *tensor.Scope, b *block, x *ts.Tensor, B, S int64, cos, sin, mask *ts.Tensor, cache *Cache, layer int) *ts.Tensor {
	nh, nkv, hd := int64(m.cfg.NumAttentionHeads), int64(m.cfg.NumKeyValueHeads), int64(m.cfg.HeadDim())
	rep := nh / nkv
	q, k, v := m.project(tp, b, x, B, S, cos, sin) // q/√hd (B, nh, S, hd); k, v (B, nkv, S, hd)
	if cache != nil {
		k, v = cache.append(tp, layer, k, v) // (B, nkv, T, hd)
	}
	// Each kv head serves rep consecutive query heads: fold them into the query length, so keys
	// and values are used as they are, never repeated.
	qg := tp.T(q.Reshape([]int64{B, nkv, rep * S, hd}, false)) // (B, nkv, rep·S, hd)
	var out *ts.Tensor
	if m.fused {
		out = m.attendFused(tp, qg, k, v, mask)
	} else {
		out = m.attendExplicit(tp, qg, k, v, mask, rep, S)
	}
	out = tp.T(tp.T(out.View([]int64{B, nh, S, hd}, false)).Transpose(1, 2, false)) // (B, S, nh, hd)
	out = tp.T(out.Reshape([]int64{B * S, nh * hd}, false))                         // (B·S, H)
	return tp.T(ts.Linear(out, b.o, ts.None))
}

// attendExplicit is softmax(qg·kᵀ + bias)·v with the softmax in f32: qg (B, nkv, rep·S, hd), k and
// v (B, nkv, T, hd), bias (B, 1, 1, S, T) or nil; gives (B, nkv, rep·S, hd). libtorch 1.13's path.
func (m *Qwen2) attendExplicit(tp *tensor.Scope, qg, k, v, bias *ts.Tensor, rep, S int64) *ts.Tensor {
	shape, _ := k.Size()
	B, nkv, t := shape[0], shape[1], shape[2]
	scores := tp.T(qg.Matmul(tp.T(k.Transpose(-1, -2, false)), false))           // (B, nkv, rep·S, T)
	scores = m.toFloat(tp, tp.T(scores.View([]int64{B, nkv, rep, S, t}, false))) // (B, nkv, rep, S, T)
	if bias != nil {
		scores = tp.T(scores.Add(bias, false))
	}
	probs := tp.T(scores.Softmax(-1, m.acc(), false))                           // f32 softmax
	probs = m.toDType(tp, tp.T(probs.View([]int64{B, nkv, rep * S, t}, false))) // (B, nkv, rep·S, T)
	return tp.T(probs.Matmul(v, false))
}

// attendFused is the same through scaled_dot_product_attention, which accumulates in f32 itself:
// qg (B, nkv, rep·S, hd) is already scaled (scale 1), mask from foldMask.
func (m *Qwen2) attendFused(tp *tensor.Scope, qg, k, v, mask *ts.Tensor) *ts.Tensor {
	return tp.T(ts.ScaledDotProductAttention(qg, k, v, mask, 0, false, []float64{1}))
}

// foldMask turns forward's bias (B, 1, 1, S, T) into the fused path's mask (B, 1, rep·S, T): one
// row per folded query row, in the model's dtype as scaled_dot_product_attention requires. Made
// once per forward pass, shared by every layer. No bias gives a zero mask (B, 1, 1, 1): gotch's
// wrapper cannot say "no mask" (it passes an undefined tensor, which libtorch 2.6 rejects).
func (m *Qwen2) foldMask(tp *tensor.Scope, bias *ts.Tensor, B int64) *ts.Tensor {
	if bias == nil {
		return tp.T(ts.Zeros([]int64{B, 1, 1, 1}, m.dtype, m.dev))
	}
	rep := int64(m.cfg.NumAttentionHeads / m.cfg.NumKeyValueHeads)
	shape, _ := bias.Size()
	S, T := shape[3], shape[4]
	x := tp.T(bias.Expand([]int64{shape[0], 1, rep, S, T}, false, false))
	return m.toDType(tp, tp.T(x.Reshape([]int64{shape[0], 1, rep * S, T}, false)))
}

// project computes the rotated, scaled queries and the rotated keys and the values of x.
func (m *Qwen2) project(tp *tensor.Scope, b *block, x *ts.Tensor, B, S int64, cos, sin *ts.Tensor) (q, k, v *ts.Tensor) {
	nh, nkv := int64(m.cfg.NumAttentionHeads), int64(m.cfg.NumKeyValueHeads)
	if b.qkv != nil { // inference: one projection, the norm's weight and 1/√hd folded in
		all := m.heads(tp, tp.T(ts.Linear(m.rmsNorm(tp, x, nil), b.qkv, b.qkvb)), B, S, nh+2*nkv) // (B, nh+2nkv, S, hd)
		qk := m.rope.apply(tp, tp.T(all.Narrow(1, 0, nh+nkv, false)), cos, sin)
		return tp.T(qk.Narrow(1, 0, nh, false)), tp.T(qk.Narrow(1, nh, nkv, false)), tp.T(all.Narrow(1, nh+nkv, nkv, false))
	}
	xn := m.rmsNorm(tp, x, b.attnNorm)
	q = m.heads(tp, tp.T(ts.Linear(xn, b.q, b.qb)), B, S, nh)  // (B, nh, S, hd)
	k = m.heads(tp, tp.T(ts.Linear(xn, b.k, b.kb)), B, S, nkv) // (B, nkv, S, hd)
	v = m.heads(tp, tp.T(ts.Linear(xn, b.v, b.vb)), B, S, nkv) // (B, nkv, S, hd)
	q = tp.T(m.rope.apply(tp, q, cos, sin).MulScalar(m.consts.attnScale, false))
	return q, m.rope.apply(tp, k, cos, sin), v
}

// heads splits a projection (B·S, n·hd) into (B, n, S, hd).
func (m *Qwen2) heads(tp *tensor.Scope, x *ts.Tensor, B, S, n int64) *ts.Tensor {
	x = tp.T(x.View([]int64{B, S, n, int64(m.cfg.HeadDim())}, false))
	return tp.T(x.Transpose(1, 2, false))
}

// mlp is down(SiLU(gate(x)) ⊙ up(x)) of the normed residual stream h.
func (m *Qwen2) mlp(tp *tensor.Scope, b *block, h *ts.Tensor) *ts.Tensor {
	x := m.rmsNorm(tp, h, b.mlpNorm)
	g := tp.T(tp.T(ts.Linear(x, b.gate, ts.None)).Silu(false))
	u := tp.T(ts.Linear(x, b.up, ts.None))
	return tp.T(ts.Linear(tp.T(g.Mul(u, false)), b.down, ts.None))
}

// logits projects final hidden states (…, H) onto the vocabulary (…, V), in f32.
func (m *Qwen2) logits(tp *tensor.Scope, h *ts.Tensor) *ts.Tensor {
	head := m.lmHead
	if head == nil {
		head = m.embed
	}
	return m.toFloat(tp, tp.T(ts.Linear(h, head, ts.None)))
}

// valueOf applies the value head to final hidden states (…, H), giving (…) in [−1, 1], in f32.
func (m *Qwen2) valueOf(tp *tensor.Scope, h *ts.Tensor) *ts.Tensor {
	v := tp.T(tp.T(ts.Linear(h, m.value.w1, m.value.b1)).Relu(false))
	v = tp.T(tp.T(ts.Linear(v, m.value.w2, m.value.b2)).Relu(false))
	v = tp.T(tp.T(ts.Linear(v, m.value.w3, m.value.b3)).Tanh(false)) // (…, 1)
	return m.toFloat(tp, tp.T(v.SqueezeDim(-1, false)))
}

// acc is the dtype of norms, softmaxes and outputs: f32, or f64 for a float64 model (gradient checks).
func (m *Qwen2) acc() gotch.DType {
	if m.dtype == gotch.Double {
		return gotch.Double
	}
	return gotch.Float
}

func (m *Qwen2) toFloat(tp *tensor.Scope, x *ts.Tensor) *ts.Tensor {
	if x.DType() == m.acc() {
		return x
	}
	return tp.T(x.Totype(m.acc(), false))
}

func (m *Qwen2) toDType(tp *tensor.Scope, x *ts.Tensor) *ts.Tensor {
	if x.DType() == m.dtype {
		return x
	}
	return tp.T(x.Totype(m.dtype, false))
}

// rope holds cos and sin tables for rotary position embedding, grown on demand.
//
//	inv_freq_i = θ^(−2i/hd), i < hd/2;  angle(p, i) = p·inv_freq_(i mod hd/2);  table (P, hd)
type rope struct {
	theta    float64
	headDim  int64
	cos, sin *ts.Tensor // (P, hd) f32 on the model's device
	size     int64
	rot      *ts.Tensor // (hd, hd) in the model's dtype: x·rot = rotate_half(x)
}

// at gathers the tables at positions pos (B, S), none above maxPos, giving (B, 1, S, hd) each in
// dtype.
func (r *rope) at(tp *tensor.Scope, pos *ts.Tensor, maxPos int64, dev gotch.Device, dtype gotch.DType) (*ts.Tensor, *ts.Tensor) {
	if need := maxPos + 1; need > r.size {
		r.grow(need, dev)
	}
	shape, _ := pos.Size()
	flat := tp.T(pos.Reshape([]int64{-1}, false))
	gather := func(table *ts.Tensor) *ts.Tensor {
		x := tp.T(table.IndexSelect(0, flat, false))
		x = tp.T(x.View([]int64{shape[0], 1, shape[1], r.headDim}, false))
		if dtype != gotch.Float {
			x = tp.T(x.Totype(dtype, false))
		}
		return x
	}
	return gather(r.cos), gather(r.sin)
}

// grow recomputes the tables for at least need positions, in float64 on the host (more accurate
// than f32 angles for large positions), doubling to amortise.
func (r *rope) grow(need int64, dev gotch.Device) {
	size := max(need, 2*r.size, 256)
	hd, half := r.headDim, r.headDim/2
	cos := make([]float32, size*hd)
	sin := make([]float32, size*hd)
	for p := int64(0); p < size; p++ {
		for i := int64(0); i < half; i++ {
			angle := float64(p) * math.Pow(r.theta, -2*float64(i)/float64(hd))
			c, s := float32(math.Cos(angle)), float32(math.Sin(angle))
			cos[p*hd+i], cos[p*hd+i+half] = c, c
			sin[p*hd+i], sin[p*hd+i+half] = s, s
		}
	}
	dropNil(&r.cos)
	dropNil(&r.sin)
	var tp tensor.Scope
	r.cos = tp.Detach(tensor.FromFloat32s(&tp, cos, []int64{size, hd}, dev))
	r.sin = tp.Detach(tensor.FromFloat32s(&tp, sin, []int64{size, hd}, dev))
	tp.Free()
	r.size = size
}

func (r *rope) close() {
	dropNil(&r.cos)
	dropNil(&r.sin)
	dropNil(&r.rot)
	r.size = 0
}

// rotation builds R with x·R = [−x₂, x₁]: R[i+h, i] = −1 and R[i, i+h] = 1 for i < h.
func (r *rope) rotation(dev gotch.Device, dtype gotch.DType) {
	hd, h := r.headDim, r.headDim/2
	m := make([]float32, hd*hd)
	for i := int64(0); i < h; i++ {
		m[(i+h)*hd+i] = -1
		m[i*hd+i+h] = 1
	}
	var tp tensor.Scope
	x := tensor.FromFloat32s(&tp, m, []int64{hd, hd}, dev)
	if dtype != gotch.Float {
		x = tp.T(x.Totype(dtype, false))
	}
	r.rot = tp.Detach(x)
	tp.Free()
}

// apply rotates x (B, n, S, hd): x·cos + rotate_half(x)·sin, where rotate_half(x) = [−x₂, x₁] is
// the product x·R with a fixed ±1 permutation matrix R (one op instead of four).
func (r *rope) apply(tp *tensor.Scope, x, cos, sin *ts.Tensor) *ts.Tensor {
	rot := tp.T(x.Matmul(r.rot, false))
	return tp.T(tp.T(x.Mul(cos, false)).Add(tp.T(rot.Mul(sin, false)), false))
}
