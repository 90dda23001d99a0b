package tokenizer

// The byte-level alphabet (GPT-2, kept by Qwen) names every byte with a printable rune so that a
// vocabulary of strings can hold arbitrary bytes: printable Latin-1 bytes ('!'..'~', '¡'..'¬',
// '®'..'ÿ') stand for themselves and the other 68 bytes, in increasing order, take the runes from
// U+0100 upward (so a space is 'Ġ', U+0120, and a newline 'Ċ', U+010A).
var (
	byteRune  [256]rune     // byte -> its rune in the alphabet
	runeByte  map[rune]byte // inverse of byteRune
	byteChars [256]string   // byte -> the UTF-8 of its rune, for building vocabulary strings
)

func init() {
	runeByte = make(map[rune]byte, 256)
	next := rune(256)
	for b := 0; b < 256; b++ {
		r := rune(b)
		if !selfNamed(byte(b)) {
			r = next
			next++
		}
		byteRune[b] = r
		runeByte[r] = byte(b)
		byteChars[b] = string(r)
	}
}

// selfNamed reports whether byte b is printable Latin-1 and so names itself.
func selfNamed(b byte) bool {
	return ('!' <= b && b <= '~') || (0xA1 <= b && b <= 0xAC) || 0xAE <= b
}

// toByteLevel spells raw bytes in the byte-level alphabet, the form tokenizer.json uses.
func toByteLevel(raw string) string {
	out := make([]byte, 0, 2*len(raw))
	for i := 0; i < len(raw); i++ {
		out = append(out, byteChars[raw[i]]...)
	}
	return string(out)
}

// appendFromByteLevel appends the raw bytes a byte-level spelled token stands for. ok is false,
// and dst unchanged, when a rune is outside the alphabet (U+FFFD, what invalid UTF-8 decodes to,
// never is in it).
func appendFromByteLevel(dst []byte, tok string) (out []byte, ok bool) {
	n := len(dst)
	for _, r := range tok {
		b, in := runeByte[r]
		if !in {
			return dst[:n], false
		}
		dst = append(dst, b)
	}
	return dst, true
}
