package optim

import (
	"fmt"
	"math"
)

// Config holds the optimizer's hyperparameters and its learning-rate schedule.
type Config struct {
	// LR is the peak learning rate, reached after warmup. The source used 5e-6.
	LR float64 `json:"lr"`
	// Beta1 and Beta2 are Adam's decay rates for the first and second moments, in [0, 1).
	Beta1 float64 `json:"beta1"`
	Beta2 float64 `json:"beta2"`
	// Eps is added to the second moment's root so rarely-updated weights do not take huge steps.
	Eps float64 `json:"eps"`
	// WeightDecay is AdamW's decoupled decay: each step multiplies every weight by 1 − lr·WeightDecay.
	WeightDecay float64 `json:"weight_decay"`
	// WarmupSteps ramps the rate linearly from LR/WarmupSteps to LR over the first steps; 0 = none.
	WarmupSteps int64 `json:"warmup_steps"`
	// DecaySteps is the step at which linear decay reaches FinalLR (counted from step 0, warmup
	// included); the rate stays at FinalLR afterwards. 0 keeps LR constant after warmup. The source
	// decayed to 0 over 2,048 steps.
	DecaySteps int64   `json:"decay_steps"`
	FinalLR    float64 `json:"final_lr"`
	// MaxGradNorm clips the global gradient norm to this value before each update; 0 = no clipping.
	// The source used 0.1.
	MaxGradNorm float64 `json:"max_grad_norm"`
}

// DefaultConfig returns the source's settings (lr 5e-6 decaying linearly to 0 over 2,048 steps, no
// warmup, clip 0.1) with PyTorch's AdamW defaults for what the source left unset (betas 0.9/0.999,
// eps 1e-8, weight decay 0.01).
func DefaultConfig() Config {
	return Config{
		LR:          5e-6,
		Beta1:       0.9,
		Beta2:       0.999,
		Eps:         1e-8,
		WeightDecay: 0.01,
		DecaySteps:  2048,
		MaxGradNorm: 0.1,
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case !finite(c.LR) || c.LR <= 0:
		return fmt.Errorf("%w: lr %v must be > 0", ErrConfig, c.LR)
	case !finite(c.Beta1) || c.Beta1 < 0 || c.Beta1 >= 1:
		return fmt.Errorf("%w: beta1 %v outside [0, 1)", ErrConfig, c.Beta1)
	case !finite(c.Beta2) || c.Beta2 < 0 || c.Beta2 >= 1:
		return fmt.Errorf("%w: beta2 %v outside [0, 1)", ErrConfig, c.Beta2)
	case !finite(c.Eps) || c.Eps <= 0:
		return fmt.Errorf("%w: eps %v must be > 0", ErrConfig, c.Eps)
	case !finite(c.WeightDecay) || c.WeightDecay < 0 || c.LR*c.WeightDecay >= 1:
		return fmt.Errorf("%w: weight decay %v must be ≥ 0 with lr·decay < 1", ErrConfig, c.WeightDecay)
	case c.WarmupSteps < 0:
		return fmt.Errorf("%w: warmup steps %d < 0", ErrConfig, c.WarmupSteps)
	case c.DecaySteps < 0 || (c.DecaySteps > 0 && c.DecaySteps <= c.WarmupSteps):
		return fmt.Errorf("%w: decay steps %d must be 0 or more than the %d warmup steps", ErrConfig, c.DecaySteps, c.WarmupSteps)
	case !finite(c.FinalLR) || c.FinalLR < 0 || c.FinalLR > c.LR:
		return fmt.Errorf("%w: final lr %v outside [0, lr=%v]", ErrConfig, c.FinalLR, c.LR)
	case !finite(c.MaxGradNorm) || c.MaxGradNorm < 0:
		return fmt.Errorf("%w: max grad norm %v must be ≥ 0", ErrConfig, c.MaxGradNorm)
	}
	return nil
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
