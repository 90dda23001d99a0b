package tokenizer

import "unicode/utf8"

// Decode returns the text of ids, as Hugging Face's decode with skip_special_tokens=false does:
// each token's bytes back to back (a token spelled outside the byte-level alphabet, as an added
// token may be, as it is), ill-formed UTF-8 (a character cut between tokens, say) replaced by
// U+FFFD, and unknown ids skipped. Use IsSpecial to drop special tokens first.
func (t *BPE) Decode(ids []int32) string {
	buf := make([]byte, 0, 4*len(ids))
	for _, id := range ids {
		if id >= 0 && int(id) < len(t.tokens) {
			buf = append(buf, t.dec[t.decOff[id]:t.decOff[id+1]]...)
		}
	}
	if utf8.Valid(buf) {
		return string(buf)
	}
	return string(appendLossy(make([]byte, 0, len(buf)+8), buf))
}
