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

// mergeHeap is mergeSmall for long words: a min-heap of candidate merges ordered by (rank,
// position), as in Hugging Face's Word::merge_all. A candidate is packed as rank<<32 | pos so the
// heap compares plain integers; one that went stale (a neighbour merged first) is recognised when
// it surfaces because the pair now at pos no longer has that rank (a rank names one pair).
func (t *BPE) mergeHeap(dst []int32, w string) []int32 {
	n := len(w)
	id := make([]int32, n)   // id[p]: token of the symbol starting at byte p
	size := make([]int32, n) // size[p]: its length in bytes, 0 once merged into its left neighbour
	prev := make([]int32, n) // prev[p]: where the symbol before it starts, -1 for the first
	for p := range n {
		id[p], size[p], prev[p] = t.byteID[w[p]], 1, int32(p-1)
	}
	h := make(candidateHeap, 0, n)
	for p := 0; p+1 < n; p++ {
		if v := t.pair(id[p], id[p+1]); v != noMerge {
			h = append(h, v>>32<<32|uint64(p))
		}
	}
	h.init()
	push := func(p int32) { // the merge of the symbol at p with its right neighbour, if any
		if q := p + size[p]; int(q) < n {
			if v := t.pair(id[p], id[q]); v != noMerge {
				h.push(v>>32<<32 | uint64(p))
			}
		}
	}
	for len(h) > 0 {
		c := h.pop()
		pos := int32(uint32(c))
		q := pos + size[pos]
		if size[pos] == 0 || int(q) >= n {
			continue
		}
		v := t.pair(id[pos], id[q])
		if v>>32 != c>>32 {
			continue
		}
		id[pos], size[pos] = int32(uint32(v)), size[pos]+size[q]
		size[q] = 0
		if r := pos + size[pos]; int(r) < n {
			prev[r] = pos
		}
		if p := prev[pos]; p >= 0 {
			push(p)
		}
		push(pos)
	}
	for p := 0; p < n; p += int(size[p]) {
		dst = append(dst, id[p])
	}
	return dst
}

// candidateHeap is a binary min-heap of packed candidates; container/heap's interface calls
// would cost more than the merges.
type candidateHeap []uint64

// init orders an arbitrary slice into a heap in O(n).
func (h candidateHeap) init() {
	for i := len(h)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *candidateHeap) push(c uint64) {
	*h = append(*h, c)
	s := *h
	for i := len(s) - 1; i > 0; {
		parent := (i - 1) / 2
		if s[parent] <= s[i] {
			break
		}
		s[i], s[parent] = s[parent], s[i]
		i = parent
	}
}

func (h *candidateHeap) pop() uint64 {
	s := *h
	top := s[0]
	s[0] = s[len(s)-1]
	*h = s[:len(s)-1]
	h.down(0)
	return top
}

func (h candidateHeap) down(i int) {
	for {
		small, l := i, 2*i+1
		if l < len(h) && h[l] < h[small] {
			small = l
		}
		if r := l + 1; r < len(h) && h[r] < h[small] {
			small = r
		}
		if small == i {
			return
		}
		h[i], h[small] = h[small], h[i]
		i = small
	}
}
