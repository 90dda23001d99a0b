package mcts

import (
	"fmt"
	"math"
)

// FirstPlay says what Q an unvisited child counts as during selection (first-play urgency).
type FirstPlay int

const (
	// FirstPlayConstant scores every unvisited child with Config.UnvisitedQ (the source: 0).
	FirstPlayConstant FirstPlay = iota
	// FirstPlayValue scores an unvisited child with its own value estimate, which is already known
	// because the expansion that created it returned the value head at its last token (or, for a
	// terminal child, its reward).
	FirstPlayValue
)

func (f FirstPlay) String() string {
	switch f {
	case FirstPlayConstant:
		return "constant"
	case FirstPlayValue:
		return "value"
	}
	return fmt.Sprintf("FirstPlay(%d)", int(f))
}

// Config holds every setting of one search. DefaultConfig gives the source's values; the zero
// Config is not valid.
type Config struct {
	// Samples is K, how many continuations one expansion samples. Duplicates (same text, same EOS)
	// merge, so a node has at most K children.
	Samples int

	// Temperature is the sampling temperature of expansions. Priors and the trajectory's log-probs
	// are always at temperature 1; only the sampler sees this.
	Temperature float64

	// StepMaxTokens caps one reasoning step: the sampler stops at StopText, at EOS, or after this
	// many new tokens, whichever comes first. A step cut by this cap is still an edge.
	StepMaxTokens int

	// StopText ends a reasoning step; the sampler includes it in the step. Empty means steps end
	// only at EOS or StepMaxTokens. The search knows no task: DefaultConfig leaves it empty and
	// episode.Search fills in the task's.
	StopText string

	// MaxNewTokens is the budget of generated tokens from the root to any node. A node whose
	// completion reaches it is terminal and takes the reward of its (unfinished) text.
	MaxNewTokens int

	// CPUCT weighs exploration in pUCT: Q(s,a) + CPUCT·P(s,a)·sqrt(N(s))/(1+N(s,a)).
	CPUCT float64

	// FirstPlay and UnvisitedQ set the Q of an unvisited child (the source: constant 0).
	FirstPlay  FirstPlay
	UnvisitedQ float64

	// Workers is W, how many simulations of one tree are in flight at once; their leaves go to
	// the Stepper together. Virtual loss keeps them apart.
	Workers int

	// Iterations per worker: a search runs Workers·Iterations simulations (the source: 16·100 = 1,600).
	Iterations int

	// VirtualVisits is how many visits a simulation adds to every node on its path on the way
	// down, removed again at backup (the source: 1). Zero turns virtual loss off.
	VirtualVisits int

	// VirtualLoss is the value each virtual visit carries, negated: a pending visit counts as
	// VirtualVisits visits of value −VirtualLoss (the source: 0, a visit with no value).
	VirtualLoss float64

	// Seed makes the search reproducible: each StepRequest's Seed is derived from it and the
	// node being expanded.
	Seed uint64
}

// DefaultConfig returns the source's settings: K=4 at temperature 0.8, steps of up to 64 tokens
// (ending at the task's step stop), 512 new tokens, c_puct 0.5, unvisited Q 0, 16 workers × 100
// iterations, one virtual visit of value 0.
func DefaultConfig() Config {
	return Config{
		Samples:       4,
		Temperature:   0.8,
		StepMaxTokens: 64,
		MaxNewTokens:  512,
		CPUCT:         0.5,
		FirstPlay:     FirstPlayConstant,
		UnvisitedQ:    0,
		Workers:       16,
		Iterations:    100,
		VirtualVisits: 1,
		VirtualLoss:   0,
	}
}

// maxSamples bounds K: a node stores its child count in a byte.
const maxSamples = 255

// Validate reports the first setting that cannot work, wrapped in ErrBadConfig.
func (c Config) Validate() error {
	for _, chk := range []struct {
		ok   bool
		what string
	}{
		{c.Samples >= 1 && c.Samples <= maxSamples, fmt.Sprintf("Samples %d not in [1, %d]", c.Samples, maxSamples)},
		{finite(c.Temperature) && c.Temperature > 0, fmt.Sprintf("Temperature %v not > 0", c.Temperature)},
		{c.StepMaxTokens >= 1, fmt.Sprintf("StepMaxTokens %d < 1", c.StepMaxTokens)},
		{c.MaxNewTokens >= 1, fmt.Sprintf("MaxNewTokens %d < 1", c.MaxNewTokens)},
		{finite(c.CPUCT) && c.CPUCT >= 0, fmt.Sprintf("CPUCT %v not >= 0", c.CPUCT)},
		{c.FirstPlay == FirstPlayConstant || c.FirstPlay == FirstPlayValue, fmt.Sprintf("unknown %v", c.FirstPlay)},
		{finite(c.UnvisitedQ) && math.Abs(c.UnvisitedQ) <= 1, fmt.Sprintf("UnvisitedQ %v not in [-1, 1]", c.UnvisitedQ)},
		{c.Workers >= 1, fmt.Sprintf("Workers %d < 1", c.Workers)},
		{c.Iterations >= 1, fmt.Sprintf("Iterations %d < 1", c.Iterations)},
		{c.VirtualVisits >= 0, fmt.Sprintf("VirtualVisits %d < 0", c.VirtualVisits)},
		{finite(c.VirtualLoss) && c.VirtualLoss >= 0 && c.VirtualLoss <= 1, fmt.Sprintf("VirtualLoss %v not in [0, 1]", c.VirtualLoss)},
		{countsFit(c), fmt.Sprintf("Workers %d, Iterations %d, VirtualVisits %d, Samples %d overflow a node's int32 counts", c.Workers, c.Iterations, c.VirtualVisits, c.Samples)},
	} {
		if !chk.ok {
			return fmt.Errorf("%w: %s", ErrBadConfig, chk.what)
		}
	}
	return nil
}

// countsFit reports whether every visit count (virtual ones included) and every node id fits
// the int32 a node stores it in.
func countsFit(c Config) bool {
	w, it, vv, k := int64(c.Workers), int64(c.Iterations), int64(c.VirtualVisits), int64(c.Samples)
	return w*(it+vv) <= math.MaxInt32 && 1+w*it*k <= math.MaxInt32
}

// Simulations is the search's budget: Workers·Iterations.
func (c Config) Simulations() int { return c.Workers * c.Iterations }

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
