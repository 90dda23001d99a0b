package mcts

import "strings"

// Trajectory is the completion the search chose: what the actor sends to the learner.
type Trajectory struct {
	// Nodes is the chosen path, root first.
	Nodes []NodeID `json:"nodes"`

	// Tokens are the generated tokens after the prompt; LogProbs and Values are per token, as
	// the Stepper returned them (behaviour log-probs at temperature 1, value head after each
	// token).
	Tokens   []int32   `json:"tokens"`
	LogProbs []float32 `json:"log_probs"`
	Values   []float32 `json:"values"`

	// StepEnds[i] is the offset in Tokens just past step i, so step i is
	// Tokens[StepEnds[i-1]:StepEnds[i]] (from 0 for the first step).
	StepEnds []int `json:"step_ends"`

	// Text is the steps' texts, concatenated.
	Text string `json:"text"`

	// Reward is the dense reward of Text. Terminal says whether the path ended at a terminal
	// node; if not, the search ran out of budget first and Reward scores the unfinished text.
	Reward   float64 `json:"reward"`
	Terminal bool    `json:"terminal"`

	// PolicyVersion is the weights version that sampled the steps. The tree cannot know it; the
	// caller sets it.
	PolicyVersion uint64 `json:"policy_version"`
}

// Trajectory follows the most-visited child from the root until a terminal or unexpanded node
// (ties go to the larger mean value, then the larger prior) and returns that path. It calls the RewardFunc when the path
// does not end at a terminal node, and fails only if that reward is out of range.
func (t *Tree) Trajectory() (Trajectory, error) {
	path := t.chosenPath()
	last := path[len(path)-1]
	size := t.steps[last].newTokens
	tr := Trajectory{
		Nodes:    make([]NodeID, len(path)),
		Tokens:   make([]int32, 0, size),
		LogProbs: make([]float32, 0, size),
		Values:   make([]float32, 0, size),
		StepEnds: make([]int, 0, len(path)-1),
		Terminal: t.nodes[last].state == terminal,
	}
	var text strings.Builder
	for i, id := range path {
		tr.Nodes[i] = NodeID(id)
		if id == 0 {
			continue
		}
		s := &t.steps[id]
		tr.Tokens = append(tr.Tokens, s.Tokens...)
		tr.LogProbs = append(tr.LogProbs, s.LogProbs...)
		tr.Values = append(tr.Values, s.Values...)
		tr.StepEnds = append(tr.StepEnds, len(tr.Tokens))
		text.WriteString(s.Text)
	}
	tr.Text = text.String()
	if tr.Terminal {
		tr.Reward = t.steps[last].reward
		return tr, nil
	}
	r, err := t.score(tr.Tokens, tr.Text)
	if err != nil {
		return Trajectory{}, err
	}
	tr.Reward = r
	return tr, nil
}

// chosenPath is the most-visited path from the root, root first.
func (t *Tree) chosenPath() []int32 {
	path := []int32{0}
	for id := int32(0); t.nodes[id].state == expanded; {
		id = t.mostVisitedChild(&t.nodes[id])
		path = append(path, id)
	}
	return path
}

// mostVisitedChild is n's child with the most completed visits.
func (t *Tree) mostVisitedChild(n *node) int32 {
	best := n.firstChild
	for c := best + 1; c < n.firstChild+int32(n.numChildren); c++ {
		a, b := &t.nodes[c], &t.nodes[best]
		if moreVisited(int(a.visits), a.valueSum, int(b.visits), b.valueSum) {
			best = c
		}
	}
	return best
}

// moreVisited says whether child a beats child b on the chosen path: more completed visits, or
// as many and a larger mean value. Remaining ties go to the earlier child, the larger prior.
func moreVisited(visitsA int, sumA float64, visitsB int, sumB float64) bool {
	if visitsA != visitsB {
		return visitsA > visitsB
	}
	return sumA > sumB // as many visits: the larger sum is the larger mean
}
