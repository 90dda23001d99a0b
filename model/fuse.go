package model

import (
	"tsd/tensor"

	"github.com/sugarme/gotch/ts"
)

// Decoding is dominated by the number of small ops per token, not by arithmetic. A model that is
// not being trained therefore carries fused copies of some weights (built here, never saved):
//
//	W_qkv = [W_q/√hd; W_k; W_v] · diag(w_attn_norm),  b_qkv = [b_q/√hd; b_k; b_v]
//
// so a layer runs one projection instead of three, one rotary embedding instead of two, and no
// attention-norm-weight or query-scale multiplication: 42 ops per layer instead of 56, with the
// same outputs up to float rounding. The copy costs (nh+2·nkv)·hd·H weights per layer (6% of
// Qwen2.5-1.5B); the MLP's weights, the bulk of the model, are not duplicated.

// fuse builds the fused weights of every layer.
func (m *Qwen2) fuse() (err error) {
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	tensor.NoGrad(func() {
		for i := range m.layers {
			b := &m.layers[i]
			q := tp.T(b.q.MulScalar(m.consts.attnScale, false))
			qb := tp.T(b.qb.MulScalar(m.consts.attnScale, false))
			w := tp.T(ts.Cat([]*ts.Tensor{q, b.k, b.v}, 0))
			an := tp.T(b.attnNorm.Unsqueeze(0, false)) // (1, H): scales columns
			b.qkv = tp.Detach(tp.T(w.Mul(an, false)))
			b.qkvb = tp.Detach(tp.T(ts.Cat([]*ts.Tensor{qb, b.kb, b.vb}, 0)))
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
	}
}
