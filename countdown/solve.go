package countdown

import (
	"fmt"
	"math/bits"
)

// MaxNumbers is the most input numbers the exhaustive search takes. Proving a problem unsolvable
// takes about 0.5 ms with four numbers, 10-25 ms with five and 0.4-0.9 s with six on a CI-class core
// (docs/countdown.md); each further number multiplies that again by well over ten.
const MaxNumbers = 6

// Solve returns an expression over p's numbers that equals the target exactly, with as few
// operations as possible and, among those, as few negative or fractional intermediate results.
// ErrUnsolvable means the search proved that no expression exists; ErrTooLarge that p has more
// than MaxNumbers numbers or intermediate values overflowed int64 before a solution was found.
func Solve(p Problem) (string, error) {
	n, err := solve(p)
	if err != nil {
		return "", err
	}
	return n.expr(), nil
}

// WorkedSolution returns a completion for supervised warm-up: one compact step per operation and
// the answer, e.g. <step>5+9=14</step><step>14*2=28</step><answer>(5+9)*2</answer>. Errors as
// Solve.
func WorkedSolution(p Problem) (string, error) {
	n, err := solve(p)
	if err != nil {
		return "", err
	}
	return n.worked(), nil
}

// solve searches sub-multisets in order of size, so the first level that reaches the target gives
// a solution with the fewest operations.
func solve(p Problem) (*node, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if len(p.Input) > MaxNumbers {
		return nil, fmt.Errorf("%w: %d numbers, the search takes at most %d", ErrTooLarge, len(p.Input), MaxNumbers)
	}
	t := newTable(p.Input)
	target := ratInt(int64(p.Target))
	for _, level := range t.levels {
		var best *node
		for _, m := range level {
			t.fill(m)
			if n := t.sets[m].get(target); n != nil && (best == nil || n.ugly < best.ugly) {
				best = n
			}
		}
		if best != nil {
			return best, nil
		}
	}
	if t.overflow {
		return nil, fmt.Errorf("%w: intermediate values of %v overflow int64", ErrTooLarge, p.Input)
	}
	return nil, fmt.Errorf("%w: %v to %d", ErrUnsolvable, p.Input, p.Target)
}

// table is the exhaustive search over a problem's numbers. Mask m (a bit per input position)
// names a sub-multiset; sets[m] holds every value of an expression that uses exactly those
// numbers, each once. Every expression splits at its root into two expressions over disjoint
// parts, so combining the sets of all splits of m with the four operations yields all of sets[m].
type table struct {
	sets   []valueSet
	levels [][]int // levels[k] lists the masks of k+1 numbers
	// overflow records that some combination left int64 and was dropped, so a miss is no proof.
	overflow bool
}

func newTable(nums []int) *table {
	n := len(nums)
	t := &table{sets: make([]valueSet, 1<<n), levels: make([][]int, n)}
	for m := 1; m < 1<<n; m++ {
		k := bits.OnesCount(uint(m)) - 1
		t.levels[k] = append(t.levels[k], m)
	}
	for i, v := range nums {
		t.sets[1<<i].offer(ratInt(int64(v)), 0, nil, nil)
	}
	return t
}

// fill computes sets[m] from the sets of its splits, which must be filled already (a smaller
// level). Masks of one number were filled by newTable.
func (t *table) fill(m int) {
	if bits.OnesCount(uint(m)) == 1 {
		return
	}
	s := &t.sets[m]
	for a := (m - 1) & m; a > 0; a = (a - 1) & m {
		b := m ^ a
		if a < b {
			continue // each unordered split once
		}
		for _, x := range t.sets[a].nodes {
			for _, y := range t.sets[b].nodes {
				t.combine(s, x, y)
			}
		}
	}
}

// combine offers every value of x and y joined by one operation, both orders where it matters
// and the larger operand first where it does not (9*6, not 6*9), so worked solutions are regular.
func (t *table) combine(s *valueSet, x, y *node) {
	hi, lo := x, y
	if hi.val.less(lo.val) {
		hi, lo = lo, hi
	}
	t.offer(s, '+', hi, lo)
	t.offer(s, '*', hi, lo)
	t.offer(s, '-', x, y)
	t.offer(s, '-', y, x)
	if y.val.num != 0 {
		t.offer(s, '/', x, y)
	}
	if x.val.num != 0 {
		t.offer(s, '/', y, x)
	}
}

func (t *table) offer(s *valueSet, op byte, l, r *node) {
	v, ok := apply(op, l.val, r.val)
	if !ok {
		t.overflow = true
		return
	}
	s.offer(v, op, l, r)
}

// apply computes a op b; the caller has ruled out division by zero.
func apply(op byte, a, b rat) (rat, bool) {
	switch op {
	case '+':
		return a.add(b)
	case '-':
		return a.sub(b)
	case '*':
		return a.mul(b)
	default:
		return a.div(b)
	}
}

// valueSet holds the distinct values one sub-multiset reaches, each with its least ugly
// expression, in the order found so that results never depend on map iteration.
type valueSet struct {
	index map[rat]int32
	nodes []*node
}

func (s *valueSet) get(v rat) *node {
	if i, ok := s.index[v]; ok {
		return s.nodes[i]
	}
	return nil
}

// offer records l op r = v unless an expression for v at least as nice is already known; it
// allocates a node only when one is kept.
func (s *valueSet) offer(v rat, op byte, l, r *node) {
	ugly := 0
	if l != nil {
		ugly = l.ugly + r.ugly
	}
	if isUgly(v) {
		ugly++
	}
	i, seen := s.index[v]
	if seen && s.nodes[i].ugly <= ugly {
		return
	}
	n := &node{val: v, op: op, left: l, right: r, ugly: ugly}
	if seen {
		s.nodes[i] = n
		return
	}
	if s.index == nil {
		s.index = make(map[rat]int32)
	}
	s.index[v] = int32(len(s.nodes))
	s.nodes = append(s.nodes, n)
}
