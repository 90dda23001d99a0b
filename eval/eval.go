// Package eval measures a policy on Countdown the way the source reports it: mean@k, the mean
// sparse reward (exact answer) over k samples per problem, with no search unless asked for; also
// pass@k (at least one exact answer) and the mean dense reward.
package eval

import (
	"context"
	"errors"
	"fmt"
	"time"

	"tsd/countdown"
	"tsd/episode"
	"tsd/model"
	"tsd/tokenizer"
)

// Config says how to sample.
type Config struct {
	K            int     // samples per problem (the source: 16)
	Temperature  float64 // the source: 0.2
	TopP         float64 // the source: 1
	MaxNewTokens int     // the source: 512
	Batch        int     // problems per model call
	Seed         int64
	Style        countdown.PromptStyle
}

// DefaultConfig is the source's evaluation: 16 samples at temperature 0.2, top-p 1, 512 tokens.
func DefaultConfig() Config {
	return Config{K: 16, Temperature: 0.2, TopP: 1, MaxNewTokens: 512, Batch: 8, Seed: 1, Style: countdown.Full}
}

// ErrConfig is a configuration Run cannot use.
var ErrConfig = errors.New("eval config")

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.K < 1:
		return fmt.Errorf("%w: k = %d < 1", ErrConfig, c.K)
	case c.Temperature < 0:
		return fmt.Errorf("%w: temperature %v < 0", ErrConfig, c.Temperature)
	case c.TopP <= 0 || c.TopP > 1:
		return fmt.Errorf("%w: top-p %v outside (0, 1]", ErrConfig, c.TopP)
	case c.MaxNewTokens < 1:
		return fmt.Errorf("%w: max new tokens %d < 1", ErrConfig, c.MaxNewTokens)
	case c.Batch < 1:
		return fmt.Errorf("%w: batch %d < 1", ErrConfig, c.Batch)
	}
	_, err := countdown.ParsePromptStyle(string(c.Style))
	return err
}

// Problem is one problem's result.
type Problem struct {
	Index       int               `json:"index"`
	Problem     countdown.Problem `json:"problem"`
	Correct     int               `json:"correct"` // samples with the exact answer
	Samples     int               `json:"samples"`
	MeanDense   float64           `json:"mean_dense_reward"`
	Tokens      int64             `json:"tokens"`                // generated for this problem
	Completions []string          `json:"completions,omitempty"` // when Run is asked to keep them
}

// Summary aggregates a run.
type Summary struct {
	Problems    int     `json:"problems"`
	K           int     `json:"k"`
	MeanAtK     float64 `json:"mean_at_k"` // mean sparse reward over all samples
	PassAtK     float64 `json:"pass_at_k"` // fraction of problems with an exact answer among k
	MeanDense   float64 `json:"mean_dense_reward"`
	Tokens      int64   `json:"generated_tokens"`
	Seconds     float64 `json:"seconds"`
	TokensPerS  float64 `json:"tokens_per_s"`
	Temperature float64 `json:"temperature"`
	Search      bool    `json:"search"`
}

// Sampler draws n completions of each prompt; policy.Policy implements it.
type Sampler = episode.Sampler

// Progress is told how many problems are done, and the running summary.
type Progress func(done int, s Summary)

// Run samples cfg.K completions for every problem and grades them. keep retains the completion
// texts in the results.
func Run(ctx context.Context, s Sampler, tok *tokenizer.BPE, problems []countdown.Problem, cfg Config, keep bool, progress Progress) (Summary, []Problem, error) {
	if err := cfg.Validate(); err != nil {
		return Summary{}, nil, err
	}
	start := time.Now()
	results := make([]Problem, 0, len(problems))
	var acc accumulator
	for lo := 0; lo < len(problems); lo += cfg.Batch {
		hi := min(lo+cfg.Batch, len(problems))
		tasks := make([]episode.Task, hi-lo)
		prompts := make([][]int32, hi-lo)
		for i := range prompts {
			tasks[i] = cfg.Style.Task(problems[lo+i])
			prompts[i] = episode.Prompt(tok, tasks[i])
		}
		opts := model.SampleOptions{Temperature: cfg.Temperature, TopP: cfg.TopP, MaxNewTokens: cfg.MaxNewTokens, Seed: cfg.Seed + int64(lo)}
		eps, err := episode.Sample(ctx, s, tok, tasks, prompts, cfg.K, opts)
		if err != nil {
			return Summary{}, nil, err
		}
		for i, ss := range eps {
			r := Problem{Index: lo + i, Problem: problems[lo+i]}
			for _, e := range ss {
				r.add(e.Graded, keep)
			}
			r.finish()
			acc.add(r)
			results = append(results, r)
		}
		if progress != nil {
			progress(hi, acc.summary(cfg, time.Since(start), false))
		}
	}
	return acc.summary(cfg, time.Since(start), false), results, nil
}

// add counts one graded sample.
func (r *Problem) add(g episode.Graded, keep bool) {
	r.Samples++
	if g.Correct {
		r.Correct++
	}
	r.MeanDense += g.Reward
	r.Tokens += g.Generated
	if keep {
		r.Completions = append(r.Completions, g.Text)
	}
}

// finish turns the summed dense reward into the mean.
func (r *Problem) finish() {
	if r.Samples > 0 {
		r.MeanDense /= float64(r.Samples)
	}
}

// accumulator keeps the running totals behind a Summary.
type accumulator struct {
	problems, solved, samples, correct int
	dense                              float64
	tokens                             int64
}

func (a *accumulator) add(r Problem) {
	a.problems++
	a.samples += r.Samples
	a.correct += r.Correct
	a.dense += r.MeanDense * float64(r.Samples)
	a.tokens += r.Tokens
	if r.Correct > 0 {
		a.solved++
	}
}

func (a *accumulator) summary(cfg Config, took time.Duration, search bool) Summary {
	s := Summary{Problems: a.problems, K: cfg.K, Tokens: a.tokens, Seconds: took.Seconds(), Temperature: cfg.Temperature, Search: search}
	if a.samples > 0 {
		s.MeanAtK = float64(a.correct) / float64(a.samples)
		s.MeanDense = a.dense / float64(a.samples)
	}
	if a.problems > 0 {
		s.PassAtK = float64(a.solved) / float64(a.problems)
	}
	if took > 0 {
		s.TokensPerS = float64(a.tokens) / took.Seconds()
	}
	return s
}
