package mcts

import (
	"fmt"
	"math"
	"slices"
)

// NodeID names a node of one Tree. The root is 0; a child's id is larger than its parent's.
type NodeID int32

// Root is the id of every tree's root node.
const Root NodeID = 0

type nodeState uint8

const (
	unexpanded nodeState = iota // a leaf nobody has asked the model about yet
	pending                     // an expansion is in flight
	expanded                    // has children
	terminal                    // ended with EOS or at the token budget; never expanded
)

// node holds what selection and backup touch, kept small so a node's children, which are
// stored side by side, share cache lines. Everything else about a node is in its step.
type node struct {
	valueSum    float64 // Σ values backed up through this node; virtual loss is not in it
	visits      int32   // completed visits
	pending     int32   // simulations in flight through this node (each worth VirtualVisits)
	parent      int32
	firstChild  int32 // children are nodes[firstChild : firstChild+numChildren]
	prior       float32
	value       float32 // own estimate: value head at the step's last token, or the reward if terminal
	numChildren uint8
	state       nodeState
}

// step is the edge into a node: the sampled continuation and where it leaves the completion.
// It points into the Stepper's answer rather than copying it, which keeps the tree's own
// per-node memory small (the Stepper contract hands answers over for good).
type step struct {
	*Continuation         // an empty one for the root
	reward        float64 // dense reward; set for terminal nodes only
	newTokens     int32   // generated tokens from the root through this step
	depth         int32   // steps from the root
}

// Tree is one search's state. It never calls the model: Select hands out the leaves that need
// a model call, the caller gets them answered (batched with other trees' leaves), and Expand
// takes the answers back. A Tree is not safe for concurrent use; one goroutine drives it.
type Tree struct {
	cfg    Config
	prompt []int32
	reward RewardFunc

	nodes  []node
	steps  []step
	parked map[int32]int32 // collisions waiting on a pending node, by node

	inFlight int // pending expansions plus parked collisions
	started  int // simulations started: expansions asked for plus terminal visits
	counts   Stats

	// virtualVisits and virtualValue are Config.VirtualVisits and the value sum it subtracts,
	// as floats for selection.
	virtualVisits, virtualValue float64

	// Scratch space for Expand.
	sums   []float64
	kids   []child
	path   []*step
	tokens []int32
}

// Leaf is a node that needs a model call: give Request to a Stepper and its result to Expand.
type Leaf struct {
	Node    NodeID
	Request StepRequest
}

// maxPrealloc caps the nodes NewTree allocates up front (64 bytes each); the source's search
// makes at most 6,401.
const maxPrealloc = 1 << 14

// NewTree starts a search from prompt, the chat-formatted root. reward scores completions.
func NewTree(cfg Config, prompt []int32, reward RewardFunc) (*Tree, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrBadPrompt)
	}
	if reward == nil {
		return nil, fmt.Errorf("%w: nil RewardFunc", ErrBadConfig)
	}
	capacity := min(1+cfg.Simulations()*cfg.Samples, maxPrealloc)
	t := &Tree{
		cfg:           cfg,
		prompt:        slices.Clone(prompt),
		reward:        reward,
		nodes:         make([]node, 1, capacity),
		steps:         make([]step, 1, capacity),
		parked:        make(map[int32]int32),
		virtualVisits: float64(cfg.VirtualVisits),
		virtualValue:  float64(cfg.VirtualVisits) * cfg.VirtualLoss,
	}
	t.nodes[0] = node{parent: -1, prior: 1}
	t.steps[0] = step{Continuation: &Continuation{}}
	return t, nil
}

// Remaining is how many simulations of the budget (Workers·Iterations) have not started;
// negative once Select has been called beyond the budget.
func (t *Tree) Remaining() int { return t.cfg.Simulations() - t.started }

// InFlight is how many simulations hold virtual loss: expansions handed out by Select and not
// yet given to Expand, plus the collisions waiting on them.
func (t *Tree) InFlight() int { return t.inFlight }

// Select runs one simulation's descent from the root by pUCT, adding a virtual visit to every
// node it enters. When the descent ends on a node that needs a model call, Select returns it
// and ok; the caller must pass the Request's answer to Expand. Otherwise ok is false and either
// the descent reached a terminal node, whose reward is already backed up, or it collided with
// an expansion in flight, and keeps its virtual visits until that expansion is applied; a
// collision is not a simulation.
func (t *Tree) Select() (leaf Leaf, ok bool) {
	id := int32(0)
	for {
		n := &t.nodes[id]
		n.pending++
		switch n.state {
		case expanded:
			id = t.bestChild(n)
		case terminal:
			t.started++
			t.counts.TerminalVisits++
			t.backup(id, float64(n.value))
			return Leaf{}, false
		case pending:
			t.parked[id]++
			t.inFlight++
			t.counts.Collisions++
			return Leaf{}, false
		default:
			n.state = pending
			t.started++
			t.inFlight++
			return Leaf{Node: NodeID(id), Request: t.request(id)}, true
		}
	}
}

// bestChild is the child of n with the largest pUCT score
// Q(s,a) + CPUCT·P(s,a)·sqrt(N(s))/(1+N(s,a)), where N counts virtual visits and Q counts
// virtual loss. Ties go to the first child, the one with the largest prior.
func (t *Tree) bestChild(n *node) int32 {
	vv, vl := t.virtualVisits, t.virtualValue
	explore := t.cfg.CPUCT * math.Sqrt(float64(n.visits)+float64(n.pending)*vv)
	best, bestScore := n.firstChild, math.Inf(-1)
	children := t.nodes[n.firstChild : n.firstChild+int32(n.numChildren)]
	for i := range children {
		c := &children[i]
		visits := float64(c.visits) + float64(c.pending)*vv
		q := t.cfg.UnvisitedQ
		switch {
		case visits > 0:
			q = (c.valueSum - float64(c.pending)*vl) / visits
		case t.cfg.FirstPlay == FirstPlayValue:
			q = float64(c.value)
		}
		if score := q + explore*float64(c.prior)/(1+visits); score > bestScore {
			best, bestScore = n.firstChild+int32(i), score
		}
	}
	return best
}

// backup ends a simulation at id with value v: every node from id up to the root loses the
// simulation's pending visit and gains a completed visit worth v. Each value is backed up
// exactly once, by the simulation that evaluated it.
func (t *Tree) backup(id int32, v float64) {
	t.counts.Simulations++
	for id >= 0 {
		n := &t.nodes[id]
		n.pending--
		n.visits++
		n.valueSum += v
		id = n.parent
	}
}

// release removes k pending visits from id and its ancestors without adding a visit: the end
// of k collisions, or of the root's expansion, which has no value to back up.
func (t *Tree) release(id int32, k int32) {
	for id >= 0 {
		n := &t.nodes[id]
		n.pending -= k
		id = n.parent
	}
}

// request builds the StepRequest that expands id: its whole prefix, and a step cap that keeps
// the completion within MaxNewTokens.
func (t *Tree) request(id int32) StepRequest {
	s := &t.steps[id]
	prefix := make([]int32, len(t.prompt)+int(s.newTokens))
	copy(prefix, t.prompt)
	for end, at := len(prefix), id; at > 0; at = t.nodes[at].parent {
		tokens := t.steps[at].Tokens
		end -= len(tokens)
		copy(prefix[end:], tokens)
	}
	return StepRequest{
		Prefix:      prefix,
		PromptLen:   len(t.prompt),
		Samples:     t.cfg.Samples,
		Temperature: t.cfg.Temperature,
		MaxTokens:   t.stepCap(s.newTokens),
		Stop:        t.cfg.StopText,
		Seed:        mixSeed(t.cfg.Seed, uint64(id)),
	}
}

// stepCap is the most tokens a step may add after newTokens generated ones.
func (t *Tree) stepCap(newTokens int32) int {
	return min(t.cfg.StepMaxTokens, t.cfg.MaxNewTokens-int(newTokens))
}

// mixSeed derives a request seed from the search seed and the node id with splitmix64's
// finaliser, so neighbouring nodes get unrelated sampler streams.
func mixSeed(seed, id uint64) uint64 {
	z := seed + 0x9e3779b97f4a7c15*(id+1)
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// Expand applies the answer to a Leaf's request: it adds the node's children, backs up the
// node's own value (the root has none; its expansion backs up nothing), and releases the
// collisions that waited on it. A bad result changes nothing and leaves the node pending.
func (t *Tree) Expand(id NodeID, res StepResult) error {
	if id < 0 || int(id) >= len(t.nodes) || t.nodes[id].state != pending {
		return fmt.Errorf("%w: node %d", ErrNotPending, id)
	}
	children, err := t.children(int32(id), res)
	if err != nil {
		return fmt.Errorf("expanding node %d: %w", id, err)
	}
	t.attach(int32(id), children)
	t.counts.Expansions++
	if id == Root {
		t.counts.Simulations++
		t.release(0, 1)
	} else {
		t.backup(int32(id), float64(t.nodes[id].value))
	}
	parked := t.parked[int32(id)]
	delete(t.parked, int32(id))
	t.release(int32(id), parked)
	t.inFlight -= 1 + int(parked)
	return nil
}

// attach appends children (already in prior order) as id's children.
func (t *Tree) attach(id int32, children []child) {
	parent := &t.nodes[id]
	parent.state = expanded
	parent.firstChild = int32(len(t.nodes))
	parent.numChildren = uint8(len(children))
	depth := t.steps[id].depth + 1
	for _, c := range children {
		n := node{parent: id, prior: float32(c.prior), value: c.value}
		if c.terminal {
			n.state = terminal
		}
		t.nodes = append(t.nodes, n)
		t.steps = append(t.steps, c.step)
	}
	t.counts.MaxDepth = max(t.counts.MaxDepth, int(depth))
}
