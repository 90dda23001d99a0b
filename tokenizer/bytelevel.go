package tokenizer

// The byte-level alphabet (GPT-2, kept by Qwen) names every byte with a printable rune so that a
// vocabulary of strings can hold arbitrary bytes: printable Latin-1 bytes ('!'..'~', '¡'..'¬',
// '®'..'ÿ') stand for themselves and the other 68 bytes, in increasing order, take the runes from
// U+0100 upward (so a space is 'Ġ', U+0120, and a newline 'Ċ', U+010A).
var (
	byteChars [256]string     // byte -> the UTF-8 of its rune
	runeByte  [256 + 68]int16 // rune -> its byte, or -1 for a rune outside the alphabet
)

func init() {
	for r := range runeByte {
		runeByte[r] = -1
	}
	next := rune(256)
	for b := range 256 {
		r := rune(b)
		if !selfNamed(byte(b)) {
			r = next
			next++
		}
		runeByte[r] = int16(b)
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
		if r >= rune(len(runeByte)) || runeByte[r] < 0 {
			return dst[:n], false
		}
		dst = append(dst, byte(runeByte[r]))
	}
	return dst, true
}
