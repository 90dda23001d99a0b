// Package algo is the one table of training algorithms: for each, the rollouts its actors
// produce, whether it trains groups of samples, its policy loss and whether it trains a value
// head. The actor, the learner, `tsd local` and the demo read it instead of mapping names
// themselves.
package algo

import (
	"errors"
	"fmt"
	"strings"

	tsdv1 "tsd/proto/tsd/v1"
)

// Rollout is how an actor produces rollouts: the actor's --algo.
type Rollout string

// The rollout kinds an actor can produce.
const (
	// RolloutSearch is one tree search per prompt; its chosen trajectory is the rollout's sample.
	RolloutSearch Rollout = "mcts"
	// RolloutGroup is G samples per prompt, all kept, for the group baselines.
	RolloutGroup Rollout = "group"
	// RolloutBestOfN is N samples per prompt, of which the one with the highest dense reward is
	// kept.
	RolloutBestOfN Rollout = "best-of-n"
)

// Rollouts lists the rollout kinds.
var Rollouts = []Rollout{RolloutSearch, RolloutGroup, RolloutBestOfN}

// Wire is the rollout kind as the API names it.
func (r Rollout) Wire() tsdv1.Algo {
	switch r {
	case RolloutSearch:
		return tsdv1.Algo_ALGO_MCTS
	case RolloutGroup:
		return tsdv1.Algo_ALGO_GROUP
	case RolloutBestOfN:
		return tsdv1.Algo_ALGO_BEST_OF_N
	}
	return tsdv1.Algo_ALGO_UNSPECIFIED
}

// ParseRollout validates an actor's --algo.
func ParseRollout(s string) (Rollout, error) {
	for _, r := range Rollouts {
		if string(r) == s {
			return r, nil
		}
	}
	return "", fmt.Errorf("algorithm %q: want %s", s, orList(Rollouts))
}

// Policy losses.
const (
	LossCISPO = "cispo"
	LossPPO   = "ppo"
)

// Names of the training algorithms: the learner's --algo.
const (
	MCTS    = "mcts"
	BestOfN = "best-of-n"
	CISPO   = "cispo"
	GRPO    = "grpo"
)

// Algo is one training algorithm.
type Algo struct {
	Name    string
	Rollout Rollout // what its actors produce
	// Group algorithms normalise advantages within a prompt's samples; the others train on one
	// sample per rollout with A_t = R − V(s_t).
	Group bool
	// Loss is the policy loss a group algorithm is named for; "" means the learner's
	// --policy-loss chooses (LossCISPO or LossPPO).
	Loss string
	// Value says whether the value head is trained.
	Value bool
	// Title names the algorithm in reports.
	Title string
}

// All is the table, in the order help texts list the algorithms.
var All = []Algo{
	{Name: MCTS, Rollout: RolloutSearch, Value: true, Title: "MCTS distillation"},
	{Name: BestOfN, Rollout: RolloutBestOfN, Value: true, Title: "best-of-N distilled"},
	{Name: CISPO, Rollout: RolloutGroup, Group: true, Loss: LossCISPO, Title: "CISPO"},
	{Name: GRPO, Rollout: RolloutGroup, Group: true, Loss: LossPPO, Title: "GRPO"},
}

// ErrUnknown is a name the table does not hold.
var ErrUnknown = errors.New("unknown algorithm")

// Lookup finds an algorithm by name.
func Lookup(name string) (Algo, error) {
	for _, a := range All {
		if a.Name == name {
			return a, nil
		}
	}
	names := make([]string, len(All))
	for i, a := range All {
		names[i] = a.Name
	}
	return Algo{}, fmt.Errorf("%w %q: want %s", ErrUnknown, name, orList(names))
}

// Wire is the API's name for the rollouts the algorithm trains on (UNSPECIFIED for an unknown
// name).
func Wire(name string) tsdv1.Algo {
	a, err := Lookup(name)
	if err != nil {
		return tsdv1.Algo_ALGO_UNSPECIFIED
	}
	return a.Rollout.Wire()
}

// orList writes "a, b or c".
func orList[S ~string](xs []S) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " or " + s[len(s)-1]
}
