package optim

import (
	"errors"
	"math"
	"testing"
)

func TestLRAt(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		step int64
		want float64
	}{
		{"source first step", DefaultConfig(), 0, 5e-6},
		{"source halfway", DefaultConfig(), 1024, 2.5e-6},
		{"source last step", DefaultConfig(), 2047, 5e-6 / 2048},
		{"source after the run", DefaultConfig(), 5000, 0},
		{"warmup first", Config{LR: 1, WarmupSteps: 4, DecaySteps: 14}, 0, 0.25},
		{"warmup last", Config{LR: 1, WarmupSteps: 4, DecaySteps: 14}, 3, 1},
		{"decay start", Config{LR: 1, WarmupSteps: 4, DecaySteps: 14}, 4, 1},
		{"decay middle", Config{LR: 1, WarmupSteps: 4, DecaySteps: 14, FinalLR: 0.5}, 9, 0.75},
		{"decay floor", Config{LR: 1, WarmupSteps: 4, DecaySteps: 14, FinalLR: 0.5}, 14, 0.5},
		{"constant", Config{LR: 2}, 1e9, 2},
		{"negative step", DefaultConfig(), -1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.cfg.LRAt(c.step); math.Abs(got-c.want) > 1e-15*math.Max(1, c.want) {
				t.Fatalf("LRAt(%d) = %v, want %v", c.step, got, c.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	bad := map[string]func(*Config){
		"zero lr":            func(c *Config) { c.LR = 0 },
		"nan lr":             func(c *Config) { c.LR = math.NaN() },
		"beta1 one":          func(c *Config) { c.Beta1 = 1 },
		"beta2 negative":     func(c *Config) { c.Beta2 = -0.1 },
		"zero eps":           func(c *Config) { c.Eps = 0 },
		"negative decay":     func(c *Config) { c.WeightDecay = -1 },
		"decay wipes weight": func(c *Config) { c.LR, c.WeightDecay = 0.5, 2 },
		"negative warmup":    func(c *Config) { c.WarmupSteps = -1 },
		"decay within warmup": func(c *Config) {
			c.WarmupSteps, c.DecaySteps = 10, 10
		},
		"final above peak": func(c *Config) { c.FinalLR = 1 },
		"negative clip":    func(c *Config) { c.MaxGradNorm = -1 },
		"infinite clip":    func(c *Config) { c.MaxGradNorm = math.Inf(1) },
	}
	for name, mutate := range bad {
		t.Run(name, func(t *testing.T) {
			c := DefaultConfig()
			mutate(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Fatalf("Validate() = %v, want ErrConfig", err)
			}
		})
	}
}
