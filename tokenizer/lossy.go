package tokenizer

import "unicode/utf8"

// appendLossy appends b to dst with each ill-formed UTF-8 sequence replaced by one U+FFFD, using
// the "maximal subpart" rule of Unicode (ch. 3, U+FFFD substitution) that Rust's
// String::from_utf8_lossy follows: a truncated multi-byte sequence is one replacement, each stray
// continuation byte is one more. Hugging Face's ByteLevel decoder ends this way, so Decode does too.
func appendLossy(dst, b []byte) []byte {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			dst = append(dst, b[i])
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r != utf8.RuneError || n > 1 {
			dst = append(dst, b[i:i+n]...)
			i += n
			continue
		}
		dst = append(dst, "\uFFFD"...)
		i += maximalSubpart(b[i:])
	}
	return dst
}

// validUTF8 returns s with ill-formed sequences replaced as appendLossy does; Go strings may hold
// any bytes, while Hugging Face's encoder only ever sees valid UTF-8.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string(appendLossy(make([]byte, 0, len(s)+8), []byte(s)))
}

// maximalSubpart returns how many bytes at the start of b (which is not valid UTF-8 there) form
// the longest prefix of some well-formed sequence, at least 1.
func maximalSubpart(b []byte) int {
	lo, hi := byte(0x80), byte(0xBF) // the range allowed for the second byte
	need := 0                        // continuation bytes a complete sequence would have
	switch c := b[0]; {
	case 0xC2 <= c && c <= 0xDF:
		need = 1
	case c == 0xE0:
		need, lo = 2, 0xA0
	case c == 0xED:
		need, hi = 2, 0x9F
	case 0xE1 <= c && c <= 0xEF:
		need = 2
	case c == 0xF0:
		need, lo = 3, 0x90
	case c == 0xF4:
		need, hi = 3, 0x8F
	case 0xF1 <= c && c <= 0xF3:
		need = 3
	default:
		return 1
	}
	n := 1
	for ; n <= need && n < len(b); n++ {
		if b[n] < lo || b[n] > hi {
			break
		}
		lo, hi = 0x80, 0xBF
	}
	return n
}
