package tokenizer

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// referenceMerge is the textbook loop: merge the lowest-ranked adjacent pair (the leftmost of
// equals) until none is left. Quadratic, obviously right.
func referenceMerge(t *BPE, w string) []int32 {
	var sym []int32
	for i := 0; i < len(w); i++ {
		sym = append(sym, t.byteID[w[i]])
	}
	for {
		best, bestV := -1, uint64(noMerge)
		for i := 0; i+1 < len(sym); i++ {
			if v := t.pair(sym[i], sym[i+1]); v < bestV {
				best, bestV = i, v
			}
		}
		if best < 0 {
			return sym
		}
		sym = slices.Replace(sym, best, best+2, int32(uint32(bestV)))
	}
}

func TestMergeMatchesReference(t *testing.T) {
	tok := qwen(t)
	rng := rand.New(rand.NewPCG(3, 4))
	alphabets := []string{"ab", "aab ", "the quick", "!?.=", "0123456789", "éè语", "\x00\xff\x80a"}
	for _, alpha := range alphabets {
		for range 300 {
			n := 1 + rng.IntN(2*smallWord)
			var b strings.Builder
			for range n {
				b.WriteByte(alpha[rng.IntN(len(alpha))])
			}
			w := b.String()
			want := referenceMerge(tok, w)
			if got := tok.mergeHeap(nil, w); !slices.Equal(got, want) {
				t.Fatalf("mergeHeap(%q) = %v, want %v", w, got, want)
			}
			if len(w) <= smallWord {
				if got := tok.mergeSmall([]int32{-7}, w); !slices.Equal(got[1:], want) || got[0] != -7 {
					t.Fatalf("mergeSmall(%q) = %v, want [-7] + %v", w, got, want)
				}
			}
		}
	}
}

func TestLongWordsUseHeap(t *testing.T) {
	tok := qwen(t)
	for _, unit := range []string{"a", "!", "ab", " "} {
		w := strings.Repeat(unit, 5000)
		if got, want := tok.merge(nil, w), referenceMerge(tok, w); !slices.Equal(got, want) {
			t.Errorf("merge(%q x 5000) differs from the reference", unit)
		}
		if got := tok.Decode(tok.Encode(w)); got != w {
			t.Errorf("round trip of %q x 5000 lost data", unit)
		}
	}
}
