package mcts

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
)

// Export is a whole tree as plain data, for JSON files and the tree viewer.
type Export struct {
	PromptTokens int          `json:"prompt_tokens"`
	Chosen       []NodeID     `json:"chosen"` // the chosen path, root first
	Nodes        []ExportNode `json:"nodes"`  // Nodes[i].ID == i; parents come before children
}

// ExportNode is one node. Visits and ValueSum count completed simulations only (no virtual loss).
type ExportNode struct {
	ID       NodeID   `json:"id"`
	Parent   NodeID   `json:"parent"` // -1 for the root
	Step     string   `json:"step"`   // text of the edge into the node; empty for the root
	Tokens   int      `json:"tokens"` // tokens in that step
	Prior    float32  `json:"prior"`
	Visits   int      `json:"visits"`
	ValueSum float64  `json:"value_sum"`
	Value    float32  `json:"value"` // own estimate: value head after the step, or the reward if terminal
	Expanded bool     `json:"expanded"`
	Terminal bool     `json:"terminal"`
	Reward   *float64 `json:"reward,omitempty"` // dense reward; terminal nodes only
}

// Export copies the tree out. It is cheap enough to call after every search (one pass over the
// nodes) but is not free, so Search leaves it to the caller.
func (t *Tree) Export() *Export {
	e := &Export{PromptTokens: len(t.prompt), Nodes: make([]ExportNode, len(t.nodes))}
	for _, id := range t.chosenPath() {
		e.Chosen = append(e.Chosen, NodeID(id))
	}
	for i := range t.nodes {
		n, s := &t.nodes[i], &t.steps[i]
		e.Nodes[i] = ExportNode{
			ID:       NodeID(i),
			Parent:   NodeID(n.parent),
			Step:     s.Text,
			Tokens:   len(s.Tokens),
			Prior:    n.prior,
			Visits:   int(n.visits),
			ValueSum: n.valueSum,
			Value:    n.value,
			Expanded: n.state == expanded,
			Terminal: n.state == terminal,
		}
		if n.state == terminal {
			r := s.reward
			e.Nodes[i].Reward = &r
		}
	}
	return e
}

// ReadExport decodes an exported tree and checks it.
func ReadExport(r io.Reader) (*Export, error) {
	var e Export
	if err := json.NewDecoder(r).Decode(&e); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadExport, err)
	}
	if err := e.Check(); err != nil {
		return nil, err
	}
	return &e, nil
}

// Tolerances of Check: priors are stored as float32, sums are float64.
const (
	priorSumTol = 1e-5
	valueSumTol = 1e-9
)

// Check verifies the invariants every finished tree keeps, wrapping the first violation in
// ErrBadExport:
//   - ids are dense, the root is node 0 with parent -1, every other parent is an earlier node;
//   - only expanded nodes have children, terminal nodes are never expanded, and the priors of
//     one node's children sum to 1;
//   - visits(n) = Σ visits(children) + own evaluations, where a terminal node is evaluated on
//     every visit, any other non-root node once (when it is expanded) and the root never;
//   - value_sum(n) = Σ value_sum(children) + own evaluations × value, so every value was backed
//     up exactly once per evaluation;
//   - values, rewards and mean values lie in [-1, 1];
//   - Chosen is the most-visited path from the root (ties to the larger mean value, then the
//     earlier child).
func (e *Export) Check() error {
	if len(e.Nodes) == 0 {
		return fmt.Errorf("%w: no nodes", ErrBadExport)
	}
	kids := make([][]NodeID, len(e.Nodes))
	for i := range e.Nodes {
		if err := e.checkNode(i); err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrBadExport, i, err)
		}
		if p := e.Nodes[i].Parent; p >= 0 {
			kids[p] = append(kids[p], NodeID(i))
		}
	}
	for i := range e.Nodes {
		if err := e.checkSums(i, kids[i]); err != nil {
			return fmt.Errorf("%w: node %d: %w", ErrBadExport, i, err)
		}
	}
	if err := e.checkChosen(kids); err != nil {
		return fmt.Errorf("%w: chosen path: %w", ErrBadExport, err)
	}
	return nil
}

// checkNode checks what node i says about itself.
func (e *Export) checkNode(i int) error {
	n := &e.Nodes[i]
	wantParent := n.Parent >= 0 && int(n.Parent) < i
	if i == 0 {
		wantParent = n.Parent == -1
	}
	switch {
	case int(n.ID) != i:
		return fmt.Errorf("id %d at index %d", n.ID, i)
	case !wantParent:
		return fmt.Errorf("parent %d", n.Parent)
	case i > 0 && n.Tokens < 1:
		return fmt.Errorf("%d tokens", n.Tokens)
	case n.Visits < 0:
		return fmt.Errorf("%d visits", n.Visits)
	case !(n.Prior >= 0 && n.Prior <= 1):
		return fmt.Errorf("prior %v", n.Prior)
	case !(n.Value >= -1 && n.Value <= 1):
		return fmt.Errorf("value %v", n.Value)
	case !(math.Abs(n.ValueSum) <= float64(n.Visits)*(1+valueSumTol)):
		return fmt.Errorf("value sum %v over %d visits", n.ValueSum, n.Visits)
	case n.Terminal && n.Expanded:
		return fmt.Errorf("terminal and expanded")
	case n.Terminal != (n.Reward != nil):
		return fmt.Errorf("terminal %v but reward %v", n.Terminal, n.Reward)
	case n.Reward != nil && math.Abs(*n.Reward-float64(n.Value)) > 1e-6:
		return fmt.Errorf("reward %v but value %v", *n.Reward, n.Value)
	}
	return nil
}

// evaluations is how many of node i's visits ended at node i itself.
func (e *Export) evaluations(i int) int {
	n := &e.Nodes[i]
	switch {
	case n.Terminal:
		return n.Visits
	case n.Expanded && i > 0:
		return 1
	}
	return 0
}

// checkSums checks node i against its children.
func (e *Export) checkSums(i int, kids []NodeID) error {
	n := &e.Nodes[i]
	if n.Expanded != (len(kids) > 0) {
		return fmt.Errorf("expanded %v with %d children", n.Expanded, len(kids))
	}
	visits, sum, priors := e.evaluations(i), float64(e.evaluations(i))*float64(n.Value), 0.0
	for _, k := range kids {
		visits += e.Nodes[k].Visits
		sum += e.Nodes[k].ValueSum
		priors += float64(e.Nodes[k].Prior)
	}
	switch {
	case visits != n.Visits:
		return fmt.Errorf("%d visits, but children and own evaluations make %d", n.Visits, visits)
	case math.Abs(sum-n.ValueSum) > valueSumTol*float64(1+n.Visits):
		return fmt.Errorf("value sum %v, but children and own evaluations make %v", n.ValueSum, sum)
	case len(kids) > 0 && math.Abs(priors-1) > priorSumTol:
		return fmt.Errorf("children's priors sum to %v", priors)
	}
	return nil
}

// checkChosen recomputes the most-visited path and compares it with Chosen.
func (e *Export) checkChosen(kids [][]NodeID) error {
	want := []NodeID{0}
	for id := NodeID(0); len(kids[id]) > 0; want = append(want, id) {
		best := kids[id][0]
		for _, k := range kids[id][1:] {
			a, b := &e.Nodes[k], &e.Nodes[best]
			if moreVisited(a.Visits, a.ValueSum, b.Visits, b.ValueSum) {
				best = k
			}
		}
		id = best
	}
	if !slices.Equal(want, e.Chosen) {
		return fmt.Errorf("%v, but the most-visited path is %v", e.Chosen, want)
	}
	return nil
}
