package tokenizer

import "math"

// smallWord is the longest piece merged by rescanning; longer ones use a heap. Pieces of natural
// text are short, and the rescan does no allocation; the heap keeps 100 KB words O(n log n).
const smallWord = 48

// noMerge is the packed value of a pair that has no merge; it sorts after every real one.
const noMerge = math.MaxUint64

func pairKey(left, right int32) uint64 { return uint64(uint32(left))<<32 | uint64(uint32(right)) }

// pair returns rank<<32 | merged id for the merge of left and right, or noMerge.
func (t *BPE) pair(left, right int32) uint64 {
	if v, ok := t.merges[pairKey(left, right)]; ok {
		return v
	}
	return noMerge
}

// mergeSmall applies merges lowest rank first, the leftmost of equal ones first, which is the
// order Hugging Face's priority queue gives. rk[i] is the merge of sym[i] and sym[i+1].
func (t *BPE) mergeSmall(dst []int32, w string) []int32 {
	n0 := len(dst)
	for i := 0; i < len(w); i++ {
		dst = append(dst, t.byteID[w[i]])
	}
	sym := dst[n0:]
	var rk [smallWord]uint64
	for i := 0; i+1 < len(sym); i++ {
		rk[i] = t.pair(sym[i], sym[i+1])
	}
	for n := len(sym); n > 1; n-- {
		best := 0
		for i := 1; i < n-1; i++ {
			if rk[i] < rk[best] {
				best = i
			}
		}
		if rk[best] == noMerge {
			break
		}
		sym[best] = int32(uint32(rk[best]))
		copy(sym[best+1:n], sym[best+2:n])
		if best+2 < n-1 {
			copy(rk[best+1:], rk[best+2:n-1])
		}
		if best > 0 {
			rk[best-1] = t.pair(sym[best-1], sym[best])
		}
		if best+1 < n-1 {
			rk[best] = t.pair(sym[best], sym[best+1])
		}
		sym = sym[:n-1]
	}
	return dst[:n0+len(sym)]
}

// candidate is a possible merge in mergeHeap: of the symbol at byte offset pos (size left) with
// the one after it (size right). Symbols only grow, so it is still valid while both sizes hold.
type candidate struct {
	rank        uint32
	pos         int32
	id          int32 // the merged token
	left, right int32
}

func (a candidate) before(b candidate) bool {
	return a.rank < b.rank || a.rank == b.rank && a.pos < b.pos
}

// mergeHeap is mergeSmall for long words: a min-heap of candidate merges ordered by (rank, pos),
// as in Hugging Face's Word::merge_all, with stale entries skipped when they surface.
func (t *BPE) mergeHeap(dst []int32, w string) []int32 {
	n := len(w)
	id := make([]int32, n)   // id[p]: token of the symbol starting at byte p
	size := make([]int32, n) // size[p]: its length in bytes, 0 once merged into its left neighbour
	prev := make([]int32, n) // prev[p]: where the symbol before it starts, -1 for the first
	for p := range n {
		id[p], size[p], prev[p] = t.byteID[w[p]], 1, int32(p-1)
	}
	var h candidateHeap
	push := func(p int32) { // the merge of the symbol at p with its right neighbour, if any
		q := p + size[p]
		if int(q) >= n {
			return
		}
		if v := t.pair(id[p], id[q]); v != noMerge {
			h.push(candidate{rank: uint32(v >> 32), pos: p, id: int32(uint32(v)), left: size[p], right: size[q]})
		}
	}
	for p := range int32(n) {
		push(p)
	}
	for len(h) > 0 {
		c := h.pop()
		q := c.pos + c.left
		if size[c.pos] != c.left || int(q) >= n || size[q] != c.right {
			continue
		}
		id[c.pos], size[c.pos], size[q] = c.id, c.left+c.right, 0
		if r := q + c.right; int(r) < n {
			prev[r] = c.pos
		}
		if p := prev[c.pos]; p >= 0 {
			push(p)
		}
		push(c.pos)
	}
	for p := 0; p < n; p += int(size[p]) {
		dst = append(dst, id[p])
	}
	return dst
}

// candidateHeap is a binary min-heap; container/heap's interface calls cost more than the merges.
type candidateHeap []candidate

func (h *candidateHeap) push(c candidate) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if !s[i].before(s[parent]) {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *candidateHeap) pop() candidate {
	s := *h
	top := s[0]
	last := len(s) - 1
	s[0] = s[last]
	s = s[:last]
	for i := 0; ; {
		small, l, r := i, 2*i+1, 2*i+2
		if l < len(s) && s[l].before(s[small]) {
			small = l
		}
		if r < len(s) && s[r].before(s[small]) {
			small = r
		}
		if small == i {
			break
		}
		s[i], s[small] = s[small], s[i]
		i = small
	}
	*h = s
	return top
}
