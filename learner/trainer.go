package learner

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/model"
	"tsd/optim"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/tensor"
)

// Trainer turns batches of rollouts into optimizer steps on a policy (see the package doc for the
// caller's duties).
//
// Tensor work runs on the trainer's own tensor.Worker (libtorch's grad mode and gotch's error slot
// are per thread), so callers need not lock their goroutine. A Trainer is not safe for concurrent
// use: one goroutine calls Step, Save, SaveWeights and Close, one after another. CheckRollout alone
// touches no tensors and may be called from any goroutine.
type Trainer struct {
	w      *tensor.Worker // owned: Close stops it
	cfg    Config
	policy *model.Qwen2   // owned: Close frees it
	ref    *model.Qwen2   // frozen KL reference, not owned; nil when KLCoef is 0
	params []tensor.Param // the weights the optimizer trains
	opt    *optim.AdamW
	pcg    *rand.PCG // Rand's source; its state is checkpointed
	rng    *rand.Rand
	lim    limits
}

// pcgStream is the PCG's second seed word, fixed so Config.Seed alone names the stream.
const pcgStream = 0x7473645f6c6561 // "tsd_lea"

// NewTrainer makes a trainer that owns policy (Close frees it) and trains every one of its weights
// (the value head only when the algorithm has a value loss). ref is the frozen initial model for
// the KL term, scored without gradients and not owned; it may be nil when cfg.KLCoef is 0.
func NewTrainer(policy, ref *model.Qwen2, cfg Config) (_ *Trainer, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if policy == nil {
		return nil, fmt.Errorf("%w: no policy model", ErrConfig)
	}
	if cfg.KLCoef == 0 {
		ref = nil
	}
	if err := checkRef(policy, ref, cfg); err != nil {
		return nil, err
	}
	w := tensor.NewWorker()
	var t *Trainer
	if err := w.Do(context.Background(), func() (err error) {
		t, err = makeTrainer(w, policy, ref, cfg)
		return err
	}); err != nil {
		w.Close()
		return nil, err
	}
	return t, nil
}

// makeTrainer is NewTrainer on w's thread, after the checks.
func makeTrainer(w *tensor.Worker, policy, ref *model.Qwen2, cfg Config) (*Trainer, error) {
	if err := policy.SetTrainable(true); err != nil {
		return nil, err
	}
	var params []tensor.Param
	for _, p := range policy.Params() {
		if cfg.trainsValue() || !model.IsValueHead(p.Name) {
			params = append(params, p)
		}
	}
	opt, err := optim.NewAdamW(params, cfg.Optim)
	if err != nil {
		return nil, err
	}
	pcg := rand.NewPCG(cfg.Seed, pcgStream)
	mc := policy.Config()
	return &Trainer{
		w: w, cfg: cfg, policy: policy, ref: ref, params: params, opt: opt, pcg: pcg, rng: rand.New(pcg),
		lim: limits{vocab: mc.VocabSize, maxLen: mc.MaxPositionEmbeddings},
	}, nil
}

func checkRef(policy, ref *model.Qwen2, cfg Config) error {
	switch {
	case cfg.KLCoef > 0 && ref == nil:
		return fmt.Errorf("%w: kl coef %v needs a reference model", ErrConfig, cfg.KLCoef)
	case ref == nil:
		return nil
	case ref.Config().VocabSize != policy.Config().VocabSize:
		return fmt.Errorf("%w: reference vocabulary %d, policy %d", ErrConfig, ref.Config().VocabSize, policy.Config().VocabSize)
	case ref.Device() != policy.Device():
		return fmt.Errorf("%w: reference on %v, policy on %v", ErrConfig, ref.Device(), policy.Device())
	}
	return nil
}

// Config returns the trainer's configuration.
func (t *Trainer) Config() Config { return t.cfg }

// Policy is the model being trained, for publishing (model.Save) and evaluation. It stays owned by
// the trainer and changes with every Step.
func (t *Trainer) Policy() *model.Qwen2 { return t.policy }

// SaveWeights writes the policy's weights to dir in dtype (model.Save), on the trainer's worker.
func (t *Trainer) SaveWeights(dir string, dtype gotch.DType) error {
	return t.w.Do(context.Background(), func() error { return t.policy.Save(dir, dtype) })
}

// Steps is the number of optimizer steps taken (checkpoints included).
func (t *Trainer) Steps() int64 { return t.opt.Steps() }

// Rand is a random source for the caller's data sampling (e.g. which buffered rollouts form the
// next batch). It is seeded from Config.Seed and its state is saved and restored with checkpoints,
// so a resumed run draws the same numbers. The step itself draws none.
func (t *Trainer) Rand() *rand.Rand { return t.rng }

// CheckRollout reports the first thing in r that Step would reject: wrong algorithm, group size,
// token ids outside the vocabulary, per-token fields that do not match the completion's length,
// non-finite numbers, a reward outside [-1, 1]. Errors wrap ErrRollout.
func (t *Trainer) CheckRollout(r *tsdv1.Rollout) error { return t.cfg.checkRollout(r, t.lim) }

// Step takes one optimizer step on the samples of rollouts (at most GlobalBatch of them): it scores
// them in micro-batches, accumulates the gradient of the batch loss, clips it, and applies AdamW at
// the schedule's rate. On error no weight has changed (short of a libtorch failure inside the update
// itself); a gradient norm that is not finite is reported as optim.ErrNonFinite and skips the update.
func (t *Trainer) Step(rollouts []*tsdv1.Rollout) (st StepStats, err error) {
	err = t.w.Do(context.Background(), func() (err error) {
		st, err = t.step(rollouts)
		return err
	})
	return st, err
}

func (t *Trainer) step(rollouts []*tsdv1.Rollout) (StepStats, error) {
	samples, err := t.cfg.flatten(rollouts, t.lim)
	if err != nil {
		return StepStats{}, err
	}
	if err := optim.ZeroGrad(t.params); err != nil {
		return StepStats{}, err
	}
	acc := newTally(t.cfg)
	for start := 0; start < len(samples); start += t.cfg.MicroBatch {
		end := min(start+t.cfg.MicroBatch, len(samples))
		if err := t.micro(samples[start:end], len(samples), acc); err != nil {
			return StepStats{}, err
		}
	}
	norm, err := optim.ClipGradNorm(t.params, t.cfg.Optim.MaxGradNorm)
	if err != nil {
		return StepStats{}, fmt.Errorf("step %d skipped: %w", t.opt.Steps(), err)
	}
	lr, err := t.opt.Step()
	if err != nil {
		return StepStats{}, err
	}
	return acc.stats(samples, t.opt.Steps(), lr, norm), nil
}

// micro runs forward and backward over one micro-batch of a batch of n samples, adding to the
// accumulated gradient (1/n)·Σ_{b ∈ micro} mean_t ℓ_{b,t}, so the micro-batches of a step sum to the
// gradient of the whole batch's loss.
func (t *Trainer) micro(mb []sample, n int, acc *tally) (err error) {
	seqs := make([][]int32, len(mb))
	for i, s := range mb {
		seqs[i] = s.ids
	}
	var refLP *ts.Tensor
	if t.ref != nil {
		rs, err := t.ref.Score(seqs, model.ScoreOptions{NoGrad: true})
		if err != nil {
			return err
		}
		defer rs.Close()
		refLP = rs.LogProbs
	}
	// Grad mode is per thread, and a no-grad region that ran earlier on this thread may not have
	// restored it (gotch builds without tsd's compat fixes read its previous state as garbage).
	if _, err := ts.GradSetEnabled(true); err != nil {
		return fmt.Errorf("%w: %v", tensor.ErrTorch, err)
	}
	sc, err := t.policy.Score(seqs, model.ScoreOptions{Entropy: t.cfg.EntropyCoef > 0})
	if err != nil {
		return err
	}
	defer sc.Close()
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	in := t.inputs(&tp, mb, n, sc, acc)
	loss := t.loss(&tp, in, sc, refLP, acc)
	tensor.Check(loss.Backward())
	return nil
}
