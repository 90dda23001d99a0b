package learner

import (
	"errors"
	"math"
	"testing"

	"tsd/optim"
)

func TestConfigValidate(t *testing.T) {
	for _, algo := range []string{AlgoMCTS, AlgoBestOfN, AlgoCISPO, AlgoGRPO} {
		c := DefaultConfig()
		c.Algo = algo
		if err := c.Validate(); err != nil {
			t.Errorf("%s: %v", algo, err)
		}
	}
	bad := map[string]func(*Config){
		"unknown algorithm":      func(c *Config) { c.Algo = "reinforce" },
		"unknown policy loss":    func(c *Config) { c.PolicyLoss = "a2c" },
		"missing policy loss":    func(c *Config) { c.Algo, c.PolicyLoss = AlgoBestOfN, "" },
		"zero clip":              func(c *Config) { c.ClipEps = 0 },
		"clip of 1":              func(c *Config) { c.ClipEps = 1 },
		"zero eps high":          func(c *Config) { c.EpsHigh = 0 },
		"negative value coef":    func(c *Config) { c.ValueCoef = -1 },
		"NaN kl coef":            func(c *Config) { c.KLCoef = math.NaN() },
		"infinite entropy coef":  func(c *Config) { c.EntropyCoef = math.Inf(1) },
		"zero gamma":             func(c *Config) { c.Gamma = 0 },
		"lambda above 1":         func(c *Config) { c.Lambda = 1.5 },
		"group of one":           func(c *Config) { c.GroupSize = 1 },
		"negative group":         func(c *Config) { c.GroupSize = -2 },
		"zero batch":             func(c *Config) { c.GlobalBatch = 0 },
		"zero micro-batch":       func(c *Config) { c.MicroBatch = 0 },
		"group over the batch":   func(c *Config) { c.Algo, c.GroupSize, c.GlobalBatch = AlgoGRPO, 16, 8 },
		"bad optimizer settings": func(c *Config) { c.Optim.LR = 0 },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			err := c.Validate()
			if err == nil {
				t.Fatal("accepted")
			}
			if !errors.Is(err, ErrConfig) && !errors.Is(err, optim.ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
	// Group algorithms name their loss: PolicyLoss is not consulted.
	c := DefaultConfig()
	c.Algo, c.PolicyLoss = AlgoGRPO, ""
	if err := c.Validate(); err != nil || c.loss() != LossPPO {
		t.Fatalf("grpo: %v, loss %q", err, c.loss())
	}
}
