package tokenizer

import (
	"runtime"
	"sync"
	"sync/atomic"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// BPE is a byte-level BPE tokenizer loaded from a Hugging Face tokenizer.json. It is immutable
// after Parse except for its word cache (guarded by locks), so one value is safe for concurrent
// use.
type BPE struct {
	tokens         []string              // id -> spelling in tokenizer.json ("" for an unused id)
	vocab          map[string]int32      // the BPE model's vocabulary, by spelling
	added          map[int32]*addedToken // added tokens by id
	addedByContent map[string]int32      // added tokens by content
	rawAdded       *addedMatcher         // added tokens matched before normalization
	normAdded      *addedMatcher         // added tokens matched in normalized text
	merges         map[uint64]uint64     // pairKey(left, right) -> rank<<32 | merged id
	byteID         [256]int32            // the id of each single byte
	dec            []byte                // the bytes of every id, back to back
	decOff         []uint32              // id's bytes are dec[decOff[id]:decOff[id+1]]
	nfc            bool                  // the normalizer is NFC
	ignoreMerges   bool                  // a word that is itself a token skips the merges
	cache          *wordCache            // word -> ids, the only mutable state
}

// Encode returns the token ids of text, exactly as Hugging Face's tokenizers library does for
// the same tokenizer.json (no special tokens are added around the text; those inside it are
// matched). Invalid UTF-8 is first replaced by U+FFFD, one per maximal ill-formed subpart.
func (t *BPE) Encode(text string) []int32 {
	text = validUTF8(text)
	return t.rawAdded.split(make([]int32, 0, len(text)/3+1), text, t.encodeNormalizing)
}

// EncodeBatch encodes each text on all CPUs; out[i] holds the ids of texts[i].
func (t *BPE) EncodeBatch(texts []string) [][]int32 {
	out := make([][]int32, len(texts))
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(texts)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(texts)); i = next.Add(1) - 1 {
				out[i] = t.Encode(texts[i])
			}
		})
	}
	wg.Wait()
	return out
}

// encodeNormalizing encodes a stretch of text between raw added tokens: Hugging Face normalizes
// each such stretch on its own, then looks for the added tokens that match normalized text.
func (t *BPE) encodeNormalizing(dst []int32, s string) []int32 {
	return t.normAdded.split(dst, t.normalize(s), t.encodeText)
}

// normalize applies the normalizer (NFC or none).
func (t *BPE) normalize(s string) string {
	if !t.nfc {
		return s
	}
	return nfc(s)
}

func nfc(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return norm.NFC.String(s)
		}
	}
	return s // ASCII is always in NFC
}

// encodeText pre-tokenizes normalized text and encodes each piece.
func (t *BPE) encodeText(dst []int32, s string) []int32 {
	for i := 0; i < len(s); {
		j := pieceEnd(s, i)
		dst = t.encodeWord(dst, s[i:j])
		i = j
	}
	return dst
}

// encodeWord appends the ids of one pre-tokenized piece.
func (t *BPE) encodeWord(dst []int32, w string) []int32 {
	if len(w) == 1 {
		return append(dst, t.byteID[w[0]])
	}
	if ids, ok := t.cache.get(w); ok {
		return append(dst, ids...)
	}
	n := len(dst)
	dst = t.merge(dst, w)
	t.cache.put(w, dst[n:])
	return dst
}

// merge appends the BPE encoding of the bytes of w.
func (t *BPE) merge(dst []int32, w string) []int32 {
	if t.ignoreMerges {
		if id, ok := t.vocab[toByteLevel(w)]; ok {
			return append(dst, id)
		}
	}
	if len(w) <= smallWord {
		return t.mergeSmall(dst, w)
	}
	return t.mergeHeap(dst, w)
}

// TokenID returns the id of a token spelled as in tokenizer.json (byte-level, so " the" is
// "Ġthe"); added tokens such as "<|im_end|>" are found by their content.
func (t *BPE) TokenID(tok string) (int32, bool) {
	if id, ok := t.addedByContent[tok]; ok {
		return id, true
	}
	id, ok := t.vocab[tok]
	return id, ok
}

// Token returns the spelling of id as in tokenizer.json, or "" (never a token) for an unknown id.
func (t *BPE) Token(id int32) string {
	if id < 0 || int(id) >= len(t.tokens) {
		return ""
	}
	return t.tokens[id]
}

// SpecialID returns the id of the special added token with this content, e.g. "<|im_end|>".
func (t *BPE) SpecialID(content string) (int32, bool) {
	id, ok := t.addedByContent[content]
	if !ok || !t.added[id].special {
		return 0, false
	}
	return id, true
}

// IsSpecial reports whether id is a special added token (one that Hugging Face's decode with
// skip_special_tokens drops).
func (t *BPE) IsSpecial(id int32) bool {
	a, ok := t.added[id]
	return ok && a.special
}

// VocabSize is one more than the largest id, so every id indexes an embedding with that many
// rows. For Qwen2.5 it is 151,665 (the model's embedding is padded to 151,936).
func (t *BPE) VocabSize() int { return len(t.tokens) }
