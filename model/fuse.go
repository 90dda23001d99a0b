package model

import (
	"github.com/sugarme/gotch/ts"
)

// Decoding is dominated by the number of small ops per token, not by arithmetic. A model that is
// not being trained therefore carries fused copies of some weights (built here, never saved):
//
//	W_qkv = [W_q/√hd; W_k; W_v] · diag(w_attn_norm),  b_qkv = [b_q/√hd; b_k; b_v]
//	W_gate' = W_gate · diag(w_mlp_norm),  W_up' = W_up · diag(w_mlp_norm)
//
// so a layer runs one projection instead of three, one rotary embedding instead of two, and no
// norm-weight or query-scale multiplications: 41 ops per layer instead of 56, with the same
// outputs up to float rounding.

// fuse builds the fused weights of every layer.
func (m *Qwen2) fuse() (err error) {
	defer catch(&err)
	var tp tape
	defer tp.free()
	noGrad(func() {
		for i := range m.layers {
			b := &m.layers[i]
			q := tp.t(b.q.MulScalar(m.consts.attnScale, false))
			qb := tp.t(b.qb.MulScalar(m.consts.attnScale, false))
			w := tp.t(ts.Cat([]*ts.Tensor{q, b.k, b.v}, 0))
			an := tp.t(b.attnNorm.Unsqueeze(0, false)) // (1, H): scales columns
			b.qkv = tp.detach(tp.t(w.Mul(an, false)))
			b.qkvb = tp.detach(tp.t(ts.Cat([]*ts.Tensor{qb, b.kb, b.vb}, 0)))
			mn := tp.t(b.mlpNorm.Unsqueeze(0, false))
			b.gateN = tp.detach(tp.t(b.gate.Mul(mn, false)))
			b.upN = tp.detach(tp.t(b.up.Mul(mn, false)))
		}
	})
	return nil
}

// unfuse drops the fused weights (the model is about to train: they would go stale).
func (m *Qwen2) unfuse() {
	for i := range m.layers {
		b := &m.layers[i]
		dropNil(&b.qkv)
		dropNil(&b.qkvb)
		dropNil(&b.gateN)
		dropNil(&b.upN)
	}
}
