package tokenizer

import (
	"unicode"
	"unicode/utf8"
)

// qwenPattern is the Split pre-tokenizer regex of Qwen2/2.5 (and Qwen3). Go's regexp has no
// lookahead, so pieceEnd implements it by hand; Load accepts a Split pre-tokenizer only with
// exactly this pattern.
const qwenPattern = `(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+`

// class sorts runes the way qwenPattern does: \p{L}, \p{N}, \s (Unicode White_Space, as in Hugging
// Face's Rust library: U+0085 is white space, U+FEFF is not), with CR and LF apart because the
// pattern treats them apart, and everything else.
type class uint8

const (
	clsOther class = iota
	clsLetter
	clsNumber
	clsSpace   // White_Space other than CR and LF
	clsNewline // CR or LF
)

var asciiClass = func() (t [utf8.RuneSelf]class) {
	for c := range t {
		t[c] = runeClass(rune(c))
	}
	return t
}()

func runeClass(r rune) class {
	switch {
	case r == '\r' || r == '\n':
		return clsNewline
	case unicode.IsLetter(r):
		return clsLetter
	case unicode.IsNumber(r):
		return clsNumber
	case unicode.Is(unicode.White_Space, r):
		return clsSpace
	}
	return clsOther
}

// classAt returns the class and UTF-8 length of the rune starting at s[i].
func classAt(s string, i int) (class, int) {
	if c := s[i]; c < utf8.RuneSelf {
		return asciiClass[c], 1
	}
	r, n := utf8.DecodeRuneInString(s[i:])
	return runeClass(r), n
}

// pieceEnd returns where the qwenPattern match starting at s[i] ends (i < len(s)). The pattern's
// alternatives are tried in order, as a backtracking engine (Oniguruma, which Hugging Face uses)
// does; every rune starts some alternative, so matches tile the text and Split's gaps are empty.
func pieceEnd(s string, i int) int {
	if s[i] == '\'' { // (?i:'s|'t|'re|'ve|'m|'ll|'d)
		if n := contraction(s[i+1:]); n > 0 {
			return i + 1 + n
		}
	}
	c0, n0 := classAt(s, i)
	switch c0 {
	case clsLetter: // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part empty
		return run(s, i+n0, clsLetter)
	case clsNumber: // \p{N}
		return i + n0
	case clsNewline:
		return spaceEnd(s, i)
	}
	j := i + n0
	if j < len(s) {
		c1, n1 := classAt(s, j)
		switch {
		case c1 == clsLetter: // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part taken
			return run(s, j+n1, clsLetter)
		case c0 == clsOther || (s[i] == ' ' && c1 == clsOther): //  ?[^\s\p{L}\p{N}]+[\r\n]*
			return run(s, run(s, j, clsOther), clsNewline)
		}
	}
	if c0 == clsOther {
		return j
	}
	return spaceEnd(s, i)
}

// run returns the end of the run of class c that starts at s[j].
func run(s string, j int, c class) int {
	for j < len(s) {
		cj, n := classAt(s, j)
		if cj != c {
			break
		}
		j += n
	}
	return j
}

// spaceEnd matches the last three alternatives at a white-space rune s[i]: \s*[\r\n]+ ends after
// the run's last CR or LF; otherwise \s+(?!\S) takes the run to the end of the text, or all but
// its last rune (which then leads the next piece); a lone space before a non-space is \s+.
func spaceEnd(s string, i int) int {
	j, last, nl := i, i, -1
	for j < len(s) {
		c, n := classAt(s, j)
		if c != clsSpace && c != clsNewline {
			break
		}
		if c == clsNewline {
			nl = j + n
		}
		last = j
		j += n
	}
	switch {
	case nl >= 0:
		return nl
	case j == len(s):
		return j
	case last > i:
		return last
	}
	return j
}

// contraction returns the length of s's prefix that completes an English contraction after an
// apostrophe (s, t, re, ve, m, ll, d; any case), or 0.
func contraction(s string) int {
	if s == "" {
		return 0
	}
	r1, n1 := utf8.DecodeRuneInString(s)
	switch asciiFold(r1) {
	case 's', 't', 'm', 'd':
		return n1
	case 'r', 'v', 'l':
		if n1 == len(s) {
			return 0
		}
		r2, n2 := utf8.DecodeRuneInString(s[n1:])
		want := 'e'
		if asciiFold(r1) == 'l' {
			want = 'l'
		}
		if asciiFold(r2) == want {
			return n1 + n2
		}
	}
	return 0
}

// asciiFold returns the lower-case ASCII letter that r equals under Unicode simple case folding
// (what (?i) uses: 'S' and 'ſ' U+017F both give 's'), or 0 if there is none.
func asciiFold(r rune) rune {
	if r < utf8.RuneSelf {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		if 'a' <= r && r <= 'z' {
			return r
		}
		return 0
	}
	for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
		if 'a' <= f && f <= 'z' {
			return f
		}
	}
	return 0
}
