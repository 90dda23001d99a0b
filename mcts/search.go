package mcts

import (
	"context"
	"fmt"
	"time"
)

// Stats describes one search.
type Stats struct {
	Simulations    int `json:"simulations"`     // completed: expansions plus terminal visits
	Expansions     int `json:"expansions"`      // model calls at the request level (one per StepRequest)
	TerminalVisits int `json:"terminal_visits"` // simulations that ended on a terminal node
	Collisions     int `json:"collisions"`      // descents that met an expansion in flight (not simulations)
	StepCalls      int `json:"step_calls"`      // Stepper.Step calls, one per round of up to Workers requests
	Nodes          int `json:"nodes"`           // tree size, root included
	MaxDepth       int `json:"max_depth"`       // steps from the root to the deepest node

	Wall        time.Duration `json:"wall_ns"`
	Stepping    time.Duration `json:"stepping_ns"`    // waiting for the Stepper
	Bookkeeping time.Duration `json:"bookkeeping_ns"` // selecting, expanding, backing up
}

// Stats returns the tree's counters; the durations and StepCalls are Search's to fill.
func (t *Tree) Stats() Stats {
	s := t.counts
	s.Nodes = len(t.nodes)
	return s
}

// Result is what one search produced. Tree stays valid for Export.
type Result struct {
	Trajectory Trajectory
	Stats      Stats
	Tree       *Tree
}

// Search runs one whole search from prompt: Workers·Iterations simulations in rounds. Each
// round selects until Workers simulations are in flight (virtual loss spreads them over the
// tree), sends their leaves to s in one Step call, and applies the answers. Many searches share
// the model by running in their own goroutines over one Batcher.
func Search(ctx context.Context, cfg Config, prompt []int32, s Stepper, reward RewardFunc) (Result, error) {
	start := time.Now()
	t, err := NewTree(cfg, prompt, reward)
	if err != nil {
		return Result{}, err
	}
	var (
		leaves   = make([]Leaf, 0, cfg.Workers)
		reqs     = make([]StepRequest, 0, cfg.Workers)
		stepping time.Duration
		calls    int
	)
	for t.Remaining() > 0 {
		if err := ctx.Err(); err != nil {
			return Result{}, fmt.Errorf("search: %w", err)
		}
		leaves, reqs = t.fill(leaves[:0], reqs[:0])
		if len(leaves) == 0 {
			continue // the round only visited terminal nodes
		}
		t0 := time.Now()
		res, err := s.Step(ctx, reqs)
		stepping += time.Since(t0)
		calls++
		if err != nil {
			return Result{}, fmt.Errorf("search: step: %w", err)
		}
		if len(res) != len(reqs) {
			return Result{}, fmt.Errorf("search: %w: %d results for %d requests", ErrBadStepResult, len(res), len(reqs))
		}
		for i, l := range leaves {
			if err := t.Expand(l.Node, res[i]); err != nil {
				return Result{}, fmt.Errorf("search: %w", err)
			}
		}
	}
	tr, err := t.Trajectory()
	if err != nil {
		return Result{}, fmt.Errorf("search: %w", err)
	}
	stats := t.Stats()
	stats.StepCalls = calls
	stats.Wall = time.Since(start)
	stats.Stepping = stepping
	stats.Bookkeeping = stats.Wall - stepping
	return Result{Trajectory: tr, Stats: stats, Tree: t}, nil
}

// fill selects until Workers simulations are in flight or the budget is spent, appending the
// leaves that need the model and their requests.
func (t *Tree) fill(leaves []Leaf, reqs []StepRequest) ([]Leaf, []StepRequest) {
	for t.inFlight < t.cfg.Workers && t.Remaining() > 0 {
		if l, ok := t.Select(); ok {
			leaves = append(leaves, l)
			reqs = append(reqs, l.Request)
		}
	}
	return leaves, reqs
}
