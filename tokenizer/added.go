package tokenizer

import (
	"cmp"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// addedToken is a token matched as a whole in the text before BPE runs (ChatML markers, say).
type addedToken struct {
	id         int32
	content    string
	special    bool // dropped by decoders that skip special tokens
	singleWord bool // only matches when no word character touches it
	lstrip     bool // also takes the white space to its left
	rstrip     bool // also takes the white space to its right
}

// addedMatcher finds added tokens in text with Hugging Face's rule: the leftmost match wins, and
// among matches there the longest, then the search goes on after it.
type addedMatcher struct {
	tokens  []*addedToken
	pattern []string   // what tokens[k] matches: its content, normalized for normalized tokens
	byFirst [256][]int // indices of the patterns starting with a byte, longest first
	starts  []byte     // the distinct first bytes
}

func newAddedMatcher(tokens []*addedToken, normalize func(string) string) *addedMatcher {
	m := &addedMatcher{tokens: tokens}
	for k, tok := range tokens {
		p := normalize(tok.content)
		m.pattern = append(m.pattern, p)
		if p == "" {
			continue
		}
		if m.byFirst[p[0]] == nil {
			m.starts = append(m.starts, p[0])
		}
		m.byFirst[p[0]] = append(m.byFirst[p[0]], k)
	}
	for _, c := range m.starts {
		slices.SortStableFunc(m.byFirst[c], func(a, b int) int {
			return cmp.Compare(len(m.pattern[b]), len(m.pattern[a]))
		})
	}
	return m
}

// find returns the leftmost-longest match at or after from, or k < 0.
func (m *addedMatcher) find(s string, from int) (start, end, k int) {
	for i := from; i < len(s); i++ {
		if len(m.starts) == 1 {
			j := strings.IndexByte(s[i:], m.starts[0])
			if j < 0 {
				break
			}
			i += j
		}
		for _, k := range m.byFirst[s[i]] {
			if strings.HasPrefix(s[i:], m.pattern[k]) {
				return i, i + len(m.pattern[k]), k
			}
		}
	}
	return -1, -1, -1
}

// split appends the ids of s: added tokens as themselves, the text around them through text.
func (m *addedMatcher) split(dst []int32, s string, text func([]int32, string) []int32) []int32 {
	if len(m.starts) == 0 {
		return text(dst, s)
	}
	last := 0 // end of the last accepted match
	for from := 0; ; {
		start, end, k := m.find(s, from)
		if k < 0 {
			break
		}
		from = end
		tok := m.tokens[k]
		if tok.singleWord && (endsWithWord(s[:start]) || startsWithWord(s[end:])) {
			continue
		}
		if tok.lstrip {
			start = max(len(strings.TrimRightFunc(s[:start], isSpace)), last)
		}
		if tok.rstrip {
			end = len(s) - len(strings.TrimLeftFunc(s[end:], isSpace))
			from = end
		}
		if last < start {
			dst = text(dst, s[last:start])
		}
		dst = append(dst, tok.id)
		last = end
	}
	if last < len(s) {
		dst = text(dst, s[last:])
	}
	return dst
}

func isSpace(r rune) bool { return unicode.Is(unicode.White_Space, r) }

// isWord is \w of Hugging Face's Rust regex: Alphabetic, marks, decimal digits, connector
// punctuation and the joiners.
func isWord(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsMark(r) ||
		unicode.In(r, unicode.Nd, unicode.Nl, unicode.Pc, unicode.Join_Control,
			unicode.Other_Alphabetic, unicode.Other_Lowercase, unicode.Other_Uppercase)
}

func endsWithWord(s string) bool {
	r, n := utf8.DecodeLastRuneInString(s)
	return n > 0 && isWord(r)
}

func startsWithWord(s string) bool {
	r, n := utf8.DecodeRuneInString(s)
	return n > 0 && isWord(r)
}
