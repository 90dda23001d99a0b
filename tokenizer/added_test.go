package tokenizer

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// splitSegments runs the matcher and returns its segments: text as is, tokens as "[id]".
func splitSegments(m *addedMatcher, s string) []string {
	var texts []string
	ids := m.split(nil, s, func(dst []int32, text string) []int32 {
		texts = append(texts, text)
		return append(dst, -int32(len(texts)))
	})
	out := make([]string, len(ids))
	for i, id := range ids {
		if id < 0 {
			out[i] = texts[-id-1]
		} else {
			out[i] = fmt.Sprintf("[%d]", id)
		}
	}
	return out
}

func TestAddedMatcher(t *testing.T) {
	tok := func(id int32, content string, edit func(*addedToken)) *addedToken {
		a := &addedToken{id: id, content: content}
		if edit != nil {
			edit(a)
		}
		return a
	}
	tests := []struct {
		name   string
		tokens []*addedToken
		in     string
		want   []string
	}{
		{"none", nil, "a b", []string{"a b"}},
		{"longest wins", []*addedToken{tok(1, "<a>", nil), tok(2, "<a><b>", nil)}, "x<a><b>y<a>", []string{"x", "[2]", "y", "[1]"}},
		{"leftmost wins", []*addedToken{tok(1, "bc", nil), tok(2, "abcd", nil)}, "xbcd abcd", []string{"x", "[1]", "d ", "[2]"}},
		{"adjacent", []*addedToken{tok(1, "<e>", nil)}, "<e><e>", []string{"[1]", "[1]"}},
		{"partial is text", []*addedToken{tok(1, "<|im_end|>", nil)}, "<|im_end", []string{"<|im_end"}},
		{"case matters", []*addedToken{tok(1, "<s>", nil)}, "<S>", []string{"<S>"}},
		// The next cases follow the behaviour tested in Hugging Face's added_vocabulary.rs.
		{"lstrip and rstrip take white space", []*addedToken{tok(1, "my", func(a *addedToken) { a.lstrip, a.rstrip = true, true })},
			"Hi my name", []string{"Hi", "[1]", "name"}},
		{"lstrip stops at previous match", []*addedToken{tok(1, "<a>", nil), tok(2, "<b>", func(a *addedToken) { a.lstrip = true })},
			"<a>  <b>", []string{"[1]", "[2]"}},
		{"lstrip unicode space", []*addedToken{tok(1, "<m>", func(a *addedToken) { a.lstrip, a.rstrip = true, true })},
			"there\t<m>\t<m>\u2000", []string{"there", "[1]", "[1]"}},
		{"single word", []*addedToken{tok(1, "<mask>", func(a *addedToken) { a.singleWord = true })},
			"<mask> My <mask> A<mask> <mask>ony <mask>", []string{"[1]", " My ", "[1]", " A<mask> <mask>ony ", "[1]"}},
		{"single word: punctuation is no word, a mark is", []*addedToken{tok(1, "<mask>", func(a *addedToken) { a.singleWord = true })},
			"<mask>, <mask>- \u25cc\u0330<mask>", []string{"[1]", ", ", "[1]", "- \u25cc\u0330<mask>"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := splitSegments(newAddedMatcher(tt.tokens, identity), tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("split(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestNormalizedAddedTokens checks the two passes: tokens with normalized=false match the raw
// text, the others match NFC text, so "é" spelled e + U+0301 matches a normalized "é" token.
func TestNormalizedAddedTokens(t *testing.T) {
	doc := tinyDoc(t)
	doc["added_tokens"] = append(doc["added_tokens"].([]any),
		map[string]any{"id": 600, "content": "caf\u00e9", "normalized": true},
		map[string]any{"id": 601, "content": "nai\u0308ve", "normalized": false})
	tok := parseDoc(t, doc)
	tests := []struct {
		in   string
		want []int32
	}{
		{"cafe\u0301", []int32{600}},
		{"caf\u00e9", []int32{600}},
		{"nai\u0308ve", []int32{601}},
	}
	for _, tt := range tests {
		if got := tok.Encode(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("Encode(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
	if got := tok.Encode("na\u00efve"); len(got) == 1 && got[0] == 601 {
		t.Errorf("a normalized=false token matched text it only equals after NFC")
	}
	if !strings.Contains(tok.Decode([]int32{600}), "caf") {
		t.Errorf("Decode(600) = %q", tok.Decode([]int32{600}))
	}
}
