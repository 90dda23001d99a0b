package actor

import (
	"errors"
	"fmt"
	"time"

	"github.com/sugarme/gotch"

	"tsd/algo"
	"tsd/countdown"
	"tsd/mcts"
)

// Algorithms an actor can run; the learner's algorithm must match (mcts and best-of-n feed the
// single-trajectory losses, group feeds cispo and grpo).
const (
	AlgoMCTS    = string(algo.RolloutSearch)
	AlgoGroup   = string(algo.RolloutGroup)
	AlgoBestOfN = string(algo.RolloutBestOfN)
)

// ErrConfig is a configuration the actor cannot run.
var ErrConfig = errors.New("actor config")

// Config configures an actor.
type Config struct {
	// ID names the actor at the coordinator and the learner; it must be stable across restarts so
	// the learner can tell retried rollouts from new ones.
	ID string
	// Addr is where peers reach this actor's Weights and Actor services ("" = serve nothing).
	Addr string
	// InitModel is version 0: a model directory or Hugging Face id, with its tokenizer.
	InitModel string
	// DataDir holds the versions this actor fetched (and serves to peers).
	DataDir string
	// KeepVersions is how many of the newest fetched versions stay on disk; older ones are
	// deleted unless loaded or being sent to a peer (as the learner's --keep-versions).
	KeepVersions int
	Device       gotch.Device
	// Problems are the prompts, cycled in a seeded order.
	Problems string
	Style    countdown.PromptStyle
	Algo     string
	// Search configures the tree search; Batch the batching of model calls across its trees.
	Search mcts.Config
	Batch  mcts.BatchConfig
	// Wave is how many problems are worked on at once (the source: 12 trees in flight). New weights
	// are swapped in between waves.
	Wave int
	// GroupSize (group) and BestOfN (best-of-n) are samples per problem, drawn at SampleTemperature
	// with at most MaxNewTokens tokens.
	GroupSize, BestOfN int
	SampleTemperature  float64
	MaxNewTokens       int
	// LeaseTTL is the actor lease; heartbeats renew it every third of it.
	LeaseTTL time.Duration
	// Queue is how many finished rollouts may wait for credits before production pauses.
	Queue int
	// MaxRollouts stops the actor after producing this many (0 = run until cancelled).
	MaxRollouts int
	Seed        int64
}

// DefaultConfig returns the source's settings.
func DefaultConfig() Config {
	return Config{Device: gotch.CPU, Style: countdown.Full, Algo: AlgoMCTS, Search: mcts.DefaultConfig(),
		Batch: mcts.DefaultBatchConfig(), Wave: 12, GroupSize: 16, BestOfN: 64, SampleTemperature: 0.8,
		MaxNewTokens: 512, LeaseTTL: 10 * time.Second, Queue: 64, Seed: 1, KeepVersions: 2}
}

// Validate reports the first unusable setting.
func (c Config) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("%w: actor id is required", ErrConfig)
	case c.InitModel == "" || c.DataDir == "" || c.Problems == "":
		return fmt.Errorf("%w: initial model, data dir and problems are required", ErrConfig)
	case c.Wave < 1 || c.Queue < 1 || c.GroupSize < 2 || c.BestOfN < 1 || c.MaxNewTokens < 1:
		return fmt.Errorf("%w: wave, queue, best-of-n and max new tokens must be ≥ 1, group size ≥ 2", ErrConfig)
	case c.SampleTemperature <= 0:
		return fmt.Errorf("%w: sample temperature %v must be > 0", ErrConfig, c.SampleTemperature)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("%w: lease ttl %v < 1s", ErrConfig, c.LeaseTTL)
	case c.KeepVersions < 1:
		return fmt.Errorf("%w: keep versions %d < 1", ErrConfig, c.KeepVersions)
	case c.MaxRollouts < 0:
		return fmt.Errorf("%w: max rollouts %d < 0", ErrConfig, c.MaxRollouts)
	}
	if _, err := algo.ParseRollout(c.Algo); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	if _, err := countdown.ParsePromptStyle(string(c.Style)); err != nil {
		return fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c.Search.Validate()
}
