package model

import (
	"fmt"
	"tsd/tensor"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Scores are the per-position outputs the learner trains on, for a right-padded batch of B
// sequences of T columns. Position t describes the choice of token t+1:
//
//	LogProbs[b, t] = log π(ids[b, t+1] | ids[b, ≤t])       (B, T−1)
//	Entropy[b, t]  = −Σ_v π(v | ids[b, ≤t]) log π(v | ·)   (B, T−1), when asked for
//	Values[b, t]   = V(ids[b, ≤t])                          (B, T−1)
//
// Positions past a row's end are padding; the caller's loss mask must exclude them. The tensors are
// differentiable unless scored with NoGrad. Close frees them.
type Scores struct {
	LogProbs, Entropy, Values *ts.Tensor
}

// Close frees the tensors.
func (s *Scores) Close() {
	dropNil(&s.LogProbs)
	dropNil(&s.Entropy)
	dropNil(&s.Values)
}

// ScoreOptions choose what Score computes.
type ScoreOptions struct {
	Entropy bool // also compute per-position entropy
	NoGrad  bool // no autograd (the frozen reference model)
}

// Score runs the model over seqs (each at least two tokens) right-padded to the longest.
func (m *Qwen2) Score(seqs [][]int32, opts ScoreOptions) (s *Scores, err error) {
	T, err := m.checkSeqs(seqs, 2)
	if err != nil {
		return nil, err
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	run := func() { s = m.score(&tp, seqs, T, opts) }
	if opts.NoGrad {
		tensor.NoGrad(run)
	} else {
		run()
	}
	return s, nil
}

func (m *Qwen2) score(tp *tensor.Scope, seqs [][]int32, T int, opts ScoreOptions) *Scores {
	B := len(seqs)
	ids := make([]int64, B*T)
	pos := make([]int64, B*T)
	for b, seq := range seqs {
		for t, id := range seq {
			ids[b*T+t] = int64(id)
		}
		for t := range T {
			pos[b*T+t] = int64(t)
		}
	}
	idT := tensor.FromInt64s(tp, ids, []int64{int64(B), int64(T)}, m.dev)
	posT := tensor.FromInt64s(tp, pos, []int64{int64(B), int64(T)}, m.dev)
	// Right padding: a causal mask alone keeps real tokens from seeing the padding after them.
	h := m.forward(tp, idT, posT, int64(T-1), causalBias(tp, T, m.dev), nil) // (B, T, H)
	h = tp.T(h.Narrow(1, 0, int64(T-1), false))                              // (B, T−1, H)
	logp := tp.T(m.logits(tp, h).LogSoftmax(-1, m.acc(), false))             // (B, T−1, V)
	next := tp.T(tp.T(idT.Narrow(1, 1, int64(T-1), false)).Unsqueeze(-1, false))
	s := &Scores{
		LogProbs: tp.Detach(tp.T(tp.T(logp.Gather(-1, next, false, false)).SqueezeDim(-1, false))), // (B, T−1)
		Values:   tp.Detach(m.valueOf(tp, h)),                                                      // (B, T−1)
	}
	if opts.Entropy {
		plogp := tp.T(tp.T(logp.Exp(false)).Mul(logp, false))
		s.Entropy = tp.Detach(tp.T(tp.T(plogp.SumDimIntlist([]int64{-1}, false, m.acc(), false)).Neg(false)))
	}
	return s
}

// causalBias is the additive mask (1, 1, 1, T, T): 0 on and below the diagonal, −1e30 above.
func causalBias(tp *tensor.Scope, T int, dev gotch.Device) *ts.Tensor {
	b := make([]float32, T*T)
	for q := 0; q < T; q++ {
		for k := q + 1; k < T; k++ {
			b[q*T+k] = -1e30
		}
	}
	return tensor.FromFloat32s(tp, b, []int64{1, 1, 1, int64(T), int64(T)}, dev)
}

// Logits returns the logits at every position of every sequence ([seq][position][vocab]), running
// them as one left-padded batch without autograd.
func (m *Qwen2) Logits(seqs [][]int32) (out [][][]float32, err error) {
	if _, err := m.checkSeqs(seqs, 1); err != nil {
		return nil, err
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	tensor.NoGrad(func() {
		c := m.NewCache(len(seqs))
		defer c.Close()
		S := 0
		for _, s := range seqs {
			S = max(S, len(s))
		}
		B, V := len(seqs), m.cfg.VocabSize
		h := m.forwardNew(&tp, c, seqs, S)       // (B, S, H)
		all := tensor.Float32s(m.logits(&tp, h)) // (B·S·V)
		out = make([][][]float32, B)
		for b, s := range seqs {
			off := S - len(s) // left padding
			out[b] = make([][]float32, len(s))
			for t := range s {
				row := (b*S + off + t) * V
				out[b][t] = all[row : row+V : row+V]
			}
		}
	})
	return out, nil
}

// checkSeqs validates token ids and lengths and returns the longest length.
func (m *Qwen2) checkSeqs(seqs [][]int32, minLen int) (int, error) {
	if len(seqs) == 0 {
		return 0, fmt.Errorf("%w: no sequences", ErrInput)
	}
	T := 0
	V := int32(m.cfg.VocabSize)
	for i, s := range seqs {
		if len(s) < minLen {
			return 0, fmt.Errorf("%w: sequence %d has %d tokens, need at least %d", ErrInput, i, len(s), minLen)
		}
		for _, id := range s {
			if id < 0 || id >= V {
				return 0, fmt.Errorf("%w: sequence %d: token id %d outside the vocabulary [0, %d)", ErrInput, i, id, V)
			}
		}
		T = max(T, len(s))
	}
	return T, nil
}
