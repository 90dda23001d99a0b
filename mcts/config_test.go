package mcts_test

import (
	"errors"
	"math"
	"testing"

	"tsd/mcts"
)

func TestDefaultConfigIsTheSources(t *testing.T) {
	c := mcts.DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// The source's search: K=4 at T=0.8, steps of up to 64 tokens (ending where the task says),
	// c_puct 0.5, unvisited Q 0, 16 workers × 100 iterations, a virtual loss of one visit, 512
	// new tokens.
	want := mcts.Config{Samples: 4, Temperature: 0.8, StepMaxTokens: 64, MaxNewTokens: 512,
		CPUCT: 0.5, FirstPlay: mcts.FirstPlayConstant, UnvisitedQ: 0, Workers: 16, Iterations: 100, VirtualVisits: 1}
	if c != want {
		t.Errorf("DefaultConfig() = %+v, want %+v", c, want)
	}
	if c.Simulations() != 1600 {
		t.Errorf("%d simulations, want 1600", c.Simulations())
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*mcts.Config)
	}{
		{"no samples", func(c *mcts.Config) { c.Samples = 0 }},
		{"too many samples", func(c *mcts.Config) { c.Samples = 256 }},
		{"zero temperature", func(c *mcts.Config) { c.Temperature = 0 }},
		{"NaN temperature", func(c *mcts.Config) { c.Temperature = math.NaN() }},
		{"empty steps", func(c *mcts.Config) { c.StepMaxTokens = 0 }},
		{"no token budget", func(c *mcts.Config) { c.MaxNewTokens = 0 }},
		{"negative c_puct", func(c *mcts.Config) { c.CPUCT = -0.1 }},
		{"infinite c_puct", func(c *mcts.Config) { c.CPUCT = math.Inf(1) }},
		{"unknown first play", func(c *mcts.Config) { c.FirstPlay = 7 }},
		{"unvisited Q above 1", func(c *mcts.Config) { c.UnvisitedQ = 1.5 }},
		{"no workers", func(c *mcts.Config) { c.Workers = 0 }},
		{"no iterations", func(c *mcts.Config) { c.Iterations = 0 }},
		{"negative virtual visits", func(c *mcts.Config) { c.VirtualVisits = -1 }},
		{"negative virtual loss", func(c *mcts.Config) { c.VirtualLoss = -0.5 }},
		{"virtual loss above 1", func(c *mcts.Config) { c.VirtualLoss = 2 }},
		{"visit counts overflow", func(c *mcts.Config) { c.Workers, c.Iterations = 1<<16, 1<<16 }},
		{"node ids overflow", func(c *mcts.Config) { c.Workers, c.Iterations, c.Samples = 1<<12, 1<<12, 255 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := mcts.DefaultConfig()
			tc.edit(&c)
			if err := c.Validate(); !errors.Is(err, mcts.ErrBadConfig) {
				t.Errorf("Validate() = %v, want ErrBadConfig", err)
			}
		})
	}
}

func TestBatchConfigValidate(t *testing.T) {
	if err := mcts.DefaultBatchConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []mcts.BatchConfig{{MaxBatch: 0}, {MaxBatch: 4, MaxWait: -1}} {
		if err := c.Validate(); !errors.Is(err, mcts.ErrBadConfig) {
			t.Errorf("%+v: Validate() = %v, want ErrBadConfig", c, err)
		}
		if _, err := mcts.NewBatcher(nil, c); !errors.Is(err, mcts.ErrBadConfig) {
			t.Errorf("%+v: NewBatcher() = %v, want ErrBadConfig", c, err)
		}
	}
}

func TestNewTreeErrors(t *testing.T) {
	reward := func([]int32, string) float64 { return 0 }
	bad := mcts.DefaultConfig()
	bad.Workers = 0
	for _, tc := range []struct {
		name   string
		cfg    mcts.Config
		prompt []int32
		reward mcts.RewardFunc
		want   error
	}{
		{"bad config", bad, []int32{1}, reward, mcts.ErrBadConfig},
		{"empty prompt", mcts.DefaultConfig(), nil, reward, mcts.ErrBadPrompt},
		{"no reward", mcts.DefaultConfig(), []int32{1}, nil, mcts.ErrBadConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mcts.NewTree(tc.cfg, tc.prompt, tc.reward); !errors.Is(err, tc.want) {
				t.Errorf("NewTree() = %v, want %v", err, tc.want)
			}
		})
	}
}
