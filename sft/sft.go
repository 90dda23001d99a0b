// Package sft warm-starts a model by supervised fine-tuning on worked solutions that the exact
// Countdown solver writes in the step/answer format. A tiny random model knows nothing, and RL
// from nothing never sees a reward; a short warm start makes the starting policy weak but not
// hopeless (the source's instruct model: 3.1% mean@16), which is where search distillation helps.
//
// The objective is the mean negative log-likelihood of the completion tokens (the worked solution
// and the end-of-turn token), prompts excluded:
//
//	L = −(1/|C|) Σ_{t∈C} log π(x_t | x_<t)
package sft

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/sugarme/gotch"

	"tsd/countdown"
	"tsd/episode"
	"tsd/model"
	"tsd/optim"
	"tsd/tensor"
	"tsd/tokenizer"
)

// Config sets the fine-tuning run.
type Config struct {
	Batch    int           // sequences per step
	Steps    int           // optimizer steps (0: until Duration)
	Duration time.Duration // wall-clock budget (0: Steps)
	Optim    optim.Config
	Seed     uint64
}

// DefaultConfig is a warm start sized for the tiny model on a CPU.
func DefaultConfig() Config {
	oc := optim.DefaultConfig()
	oc.LR, oc.WarmupSteps, oc.DecaySteps, oc.FinalLR, oc.MaxGradNorm, oc.WeightDecay = 2e-3, 20, 0, 2e-3, 1.0, 0.01
	return Config{Batch: 32, Steps: 400, Optim: oc, Seed: 1}
}

// ErrConfig is a configuration Train cannot use.
var ErrConfig = errors.New("sft config")

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.Batch < 1:
		return fmt.Errorf("%w: batch %d < 1", ErrConfig, c.Batch)
	case c.Steps < 0 || c.Duration < 0 || (c.Steps == 0 && c.Duration == 0):
		return fmt.Errorf("%w: give a positive number of steps or a duration", ErrConfig)
	}
	return c.Optim.Validate()
}

// Example is one training sequence: the prompt, then the completion the loss is taken on.
type Example struct {
	Prompt, Completion []int32
}

// Examples renders each solvable problem as prompt + worked solution + end of turn. Unsolvable
// problems are skipped; it returns how many.
func Examples(tok *tokenizer.BPE, style countdown.PromptStyle, problems []countdown.Problem) ([]Example, int, error) {
	end, ok := tok.SpecialID(tokenizer.IMEnd)
	if !ok {
		return nil, 0, fmt.Errorf("sft: tokenizer has no %s", tokenizer.IMEnd)
	}
	var out []Example
	skipped := 0
	for _, p := range problems {
		ws, err := countdown.WorkedSolution(p)
		if err != nil {
			skipped++
			continue
		}
		out = append(out, Example{Prompt: episode.Prompt(tok, style.Task(p)), Completion: append(tok.Encode(ws), end)})
	}
	return out, skipped, nil
}

// Progress reports a step's loss.
type Progress func(step int, loss float64, elapsed time.Duration)

// Train fine-tunes m (which must be trainable) on examples, drawn in a seeded random order, until
// the steps or the duration are done or ctx ends. The steps run on a tensor.Worker of their own;
// progress is called from it.
func Train(ctx context.Context, m *model.Qwen2, examples []Example, cfg Config, progress Progress) (steps int, err error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	if len(examples) == 0 {
		return 0, fmt.Errorf("%w: no examples", ErrConfig)
	}
	err = tensor.OnWorker(func() error {
		var err error
		steps, err = train(ctx, m, examples, cfg, progress)
		return err
	})
	return steps, err
}

func train(ctx context.Context, m *model.Qwen2, examples []Example, cfg Config, progress Progress) (steps int, err error) {
	params := m.Params()
	opt, err := optim.NewAdamW(params, cfg.Optim)
	if err != nil {
		return 0, err
	}
	defer opt.Close()
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5f7))
	order := rng.Perm(len(examples))
	start := time.Now()
	for next := 0; (cfg.Steps == 0 || steps < cfg.Steps) && (cfg.Duration == 0 || time.Since(start) < cfg.Duration); steps++ {
		if err := ctx.Err(); err != nil {
			return steps, err
		}
		batch := make([]Example, cfg.Batch)
		for i := range batch {
			if next == len(order) {
				order, next = rng.Perm(len(examples)), 0
			}
			batch[i] = examples[order[next]]
			next++
		}
		loss, err := step(m, batch)
		if err != nil {
			return steps, err
		}
		_, err = optim.ClipGradNorm(params, cfg.Optim.MaxGradNorm)
		switch {
		case errors.Is(err, optim.ErrNonFinite): // skip the update
		case err != nil:
			return steps, err
		default:
			if _, err := opt.Step(); err != nil {
				return steps, err
			}
		}
		if err := optim.ZeroGrad(params); err != nil {
			return steps, err
		}
		if progress != nil {
			progress(steps+1, loss, time.Since(start))
		}
	}
	return steps, nil
}

// step computes the batch loss and its gradients (accumulated into the weights' grads).
func step(m *model.Qwen2, batch []Example) (_ float64, err error) {
	seqs := make([][]int32, len(batch))
	T := 0
	for i, e := range batch {
		seqs[i] = append(append([]int32{}, e.Prompt...), e.Completion...)
		T = max(T, len(seqs[i]))
	}
	// mask[b, t] = 1 where position t predicts a completion token.
	mask := make([]float32, len(batch)*(T-1))
	for b, e := range batch {
		for t := len(e.Prompt) - 1; t < len(seqs[b])-1; t++ {
			mask[b*(T-1)+t] = 1
		}
	}
	s, err := m.Score(seqs, model.ScoreOptions{})
	if err != nil {
		return 0, err
	}
	defer s.Close()
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	mt := tensor.FromFloat32s(&tp, mask, []int64{int64(len(batch)), int64(T - 1)}, m.Device()) // [B, T-1]
	total := tp.T(tp.T(s.LogProbs.Mul(mt, false)).Sum(gotch.Float, false))
	count := 0.0
	for _, v := range mask {
		count += float64(v)
	}
	loss := tp.T(total.MulScalar(tp.Scalar(-1/count), false))
	tensor.Check(loss.Backward())
	return loss.Float64Values()[0], nil
}
