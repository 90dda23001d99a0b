package learner

import (
	"fmt"
	"math"

	"tsd/algo"
	"tsd/optim"
)

// Algorithms: how the actors produced the rollouts, which decides how they are trained.
// The table in package algo says what each one trains on and how.
const (
	// AlgoMCTS trains on the trajectory the tree search chose (one sample per rollout) with a value
	// loss and A_t = R − V(s_t).
	AlgoMCTS = algo.MCTS
	// AlgoBestOfN trains on the best of N samples by dense reward exactly like an MCTS trajectory.
	AlgoBestOfN = algo.BestOfN
	// AlgoCISPO trains groups of samples per prompt with group-normalised advantages, the CISPO
	// loss and no value head.
	AlgoCISPO = algo.CISPO
	// AlgoGRPO trains groups like AlgoCISPO with the PPO-clip loss (GRPO).
	AlgoGRPO = algo.GRPO
)

// Policy losses for single-trajectory algorithms (AlgoMCTS, AlgoBestOfN).
const (
	LossCISPO = algo.LossCISPO
	LossPPO   = algo.LossPPO
)

// Config holds the learner's hyperparameters. DefaultConfig gives the source's values.
type Config struct {
	// Algo is one of AlgoMCTS, AlgoBestOfN, AlgoCISPO, AlgoGRPO; rollouts must match it.
	Algo string `json:"algo"`
	// PolicyLoss is LossCISPO or LossPPO for AlgoMCTS and AlgoBestOfN; group algorithms ignore it
	// (their name says their loss).
	PolicyLoss string `json:"policy_loss"`
	// ClipEps is PPO-clip's trust region: the ratio is clipped to [1 − ε, 1 + ε].
	ClipEps float64 `json:"clip_eps"`
	// EpsHigh bounds CISPO's importance weight: clip(r, 0, 1 + ε_high).
	EpsHigh float64 `json:"eps_high"`
	// ValueCoef weighs the value loss (MSE to the return). Group algorithms train no value head and
	// ignore it.
	ValueCoef float64 `json:"value_coef"`
	// KLCoef weighs the k3 estimate of KL(π‖π_ref) to the frozen initial model; 0 needs no reference.
	KLCoef float64 `json:"kl_coef"`
	// EntropyCoef weighs an entropy bonus (subtracted from the loss); 0 skips computing entropy.
	EntropyCoef float64 `json:"entropy_coef"`
	// Gamma and Lambda are GAE's discount and trace decay for single-trajectory algorithms;
	// γ = λ = 1 gives the source's A_t = R − V(s_t).
	Gamma  float64 `json:"gamma"`
	Lambda float64 `json:"lambda"`
	// GroupSize is the number of samples a group rollout must carry (the source: 16); 0 accepts any
	// group of at least two.
	GroupSize int `json:"group_size"`
	// GlobalBatch is the most samples one optimizer step trains on (the source: 32).
	GlobalBatch int `json:"global_batch"`
	// MicroBatch is how many samples go through one forward/backward pass; gradients of the
	// micro-batches accumulate into one update. It trades memory for speed only.
	MicroBatch int `json:"micro_batch"`
	// Seed seeds the trainer's random source (Trainer.Rand), which checkpoints carry.
	Seed uint64 `json:"seed"`
	// Optim configures AdamW, the learning-rate schedule and gradient clipping.
	Optim optim.Config `json:"optim"`
}

// DefaultConfig returns the source's settings: MCTS distillation with the CISPO loss (ε_high 5.0),
// PPO ε 0.2 when chosen, value coefficient 1.0, k3 KL coefficient 0.05, no entropy bonus,
// γ = λ = 1, groups of 16, global batch 32 in micro-batches of 8, and optim.DefaultConfig.
func DefaultConfig() Config {
	return Config{
		Algo:        AlgoMCTS,
		PolicyLoss:  LossCISPO,
		ClipEps:     0.2,
		EpsHigh:     5.0,
		ValueCoef:   1.0,
		KLCoef:      0.05,
		Gamma:       1,
		Lambda:      1,
		GroupSize:   16,
		GlobalBatch: 32,
		MicroBatch:  8,
		Seed:        1,
		Optim:       optim.DefaultConfig(),
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if err := c.validateAlgo(); err != nil {
		return err
	}
	coefs := []struct {
		name string
		v    float64
	}{{"clip eps", c.ClipEps}, {"eps high", c.EpsHigh}, {"value coef", c.ValueCoef}, {"kl coef", c.KLCoef}, {"entropy coef", c.EntropyCoef}}
	for _, k := range coefs {
		if math.IsNaN(k.v) || math.IsInf(k.v, 0) || k.v < 0 {
			return fmt.Errorf("%w: %s %v must be finite and ≥ 0", ErrConfig, k.name, k.v)
		}
	}
	switch {
	case c.ClipEps == 0 || c.ClipEps >= 1:
		return fmt.Errorf("%w: clip eps %v outside (0, 1)", ErrConfig, c.ClipEps)
	case c.EpsHigh == 0:
		return fmt.Errorf("%w: eps high must be > 0", ErrConfig)
	case !(c.Gamma > 0 && c.Gamma <= 1) || !(c.Lambda >= 0 && c.Lambda <= 1):
		return fmt.Errorf("%w: gamma %v must be in (0, 1] and lambda %v in [0, 1]", ErrConfig, c.Gamma, c.Lambda)
	case c.GroupSize < 0 || c.GroupSize == 1:
		return fmt.Errorf("%w: group size %d (0 for any, else ≥ 2)", ErrConfig, c.GroupSize)
	case c.GlobalBatch < 1 || c.MicroBatch < 1:
		return fmt.Errorf("%w: global batch %d and micro-batch %d must be ≥ 1", ErrConfig, c.GlobalBatch, c.MicroBatch)
	case c.group() && c.GroupSize > c.GlobalBatch:
		return fmt.Errorf("%w: a group of %d does not fit a global batch of %d", ErrConfig, c.GroupSize, c.GlobalBatch)
	}
	return c.Optim.Validate()
}

func (c Config) validateAlgo() error {
	a, err := algo.Lookup(c.Algo)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if a.Loss == "" && c.PolicyLoss != LossCISPO && c.PolicyLoss != LossPPO {
		return fmt.Errorf("%w: policy loss %q (%s or %s)", ErrConfig, c.PolicyLoss, LossCISPO, LossPPO)
	}
	return nil
}

// algo is the table's row for c.Algo (the zero Algo for an unknown name, which Validate refuses).
func (c Config) algo() algo.Algo {
	a, _ := algo.Lookup(c.Algo)
	return a
}

// group reports whether the algorithm trains groups with normalised advantages and no value head.
func (c Config) group() bool { return c.algo().Group }

// loss is the policy loss in effect: a group algorithm's own, else PolicyLoss.
func (c Config) loss() string {
	if l := c.algo().Loss; l != "" {
		return l
	}
	return c.PolicyLoss
}

// trainsValue reports whether the value head is trained (a value loss with a non-zero weight).
func (c Config) trainsValue() bool { return c.algo().Value && c.ValueCoef > 0 }
