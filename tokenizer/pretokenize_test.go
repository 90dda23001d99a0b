package tokenizer

import (
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dlclark/regexp2/v2"
)

// pieces splits s the way the Split pre-tokenizer does, with the hand-written scanner.
func pieces(s string) []string {
	var out []string
	for i := 0; i < len(s); {
		j := pieceEnd(s, i)
		out = append(out, s[i:j])
		i = j
	}
	return out
}

// referencePieces splits s with a backtracking regexp engine that supports lookahead: the dumb,
// obviously-right routine the scanner is checked against.
func referencePieces(t testing.TB, re *regexp2.Regexp, s string) []string {
	t.Helper()
	idx, err := re.FindAllStringIndex(s, -1)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	prev := 0
	for _, m := range idx {
		if m[0] > prev { // Split's Isolated behaviour keeps gaps as pieces (there are none)
			out = append(out, s[prev:m[0]])
		}
		out = append(out, s[m[0]:m[1]])
		prev = m[1]
	}
	if prev < len(s) {
		out = append(out, s[prev:])
	}
	return out
}

func TestPieces(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"empty", "", nil},
		{"words", "Hello world", []string{"Hello", " world"}},
		{"contractions", "I'LL don't 'sam", []string{"I", "'LL", " don", "'t", " '", "sam"}},
		{"contraction first", "'sam've", []string{"'s", "am", "'ve"}},
		{"long s folds to s", "x'ſ", []string{"x", "'ſ"}},
		{"digits alone", "a123", []string{"a", "1", "2", "3"}},
		{"punct before letter", "(x+y)", []string{"(x", "+y", ")"}},
		{"space punct newline", "a !!\n\nb", []string{"a", " !!\n\n", "b"}},
		{"spaces before word", "a   b", []string{"a", "  ", " b"}},
		{"trailing spaces", "a   ", []string{"a", "   "}},
		{"spaces then newline", "abc   \n  def", []string{"abc", "   \n", " ", " def"}},
		{"crlf", "a\r\n\r\nb", []string{"a", "\r\n\r\n", "b"}},
		{"tab before letter", "\tx", []string{"\tx"}},
		{"lone space before digit", "a 1", []string{"a", " ", "1"}},
		{"newline before letter", "\nx", []string{"\n", "x"}},
		{"nbsp before letter", "\u00a0x", []string{"\u00a0x"}},
		{"NEL is white space", "a\u0085\u0085b", []string{"a", "\u0085", "\u0085b"}},
		{"BOM is not white space", "\ufeffab", []string{"\ufeffab"}},
		{"chatml", "<|im_start|>user\n", []string{"<|", "im", "_start", "|>", "user", "\n"}},
	}
	re := regexp2.MustCompile(qwenPattern, regexp2.None)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := pieces(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("pieces(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.name == "long s folds to s" {
				return // .NET's case-insensitive matching does not fold ſ; Oniguruma does
			}
			if ref := referencePieces(t, re, tt.in); !reflect.DeepEqual(got, ref) {
				t.Errorf("pieces(%q) = %q, reference engine gives %q", tt.in, got, ref)
			}
		})
	}
}

// pieceAlphabet mixes every class the pattern distinguishes, with several runes of each.
var pieceAlphabet = []rune("aZé語ß'sStTrReEvVlLmMdD09٣½Ⅻ \t\r\n\u00a0\u0085\u2028\u3000\ufeff!?.,-<|>_😀\u0301")

func randomText(rng *rand.Rand, alphabet []rune, maxLen int) string {
	n := rng.IntN(maxLen + 1)
	var b strings.Builder
	for range n {
		b.WriteRune(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

func TestPiecesMatchReferenceEngine(t *testing.T) {
	re := regexp2.MustCompile(qwenPattern, regexp2.None)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		s := randomText(rng, pieceAlphabet, 24)
		if got, want := pieces(s), referencePieces(t, re, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("pieces(%q) = %q, reference engine gives %q", s, got, want)
		}
	}
}

func FuzzPieces(f *testing.F) {
	for _, s := range []string{"", "Hello world", "a   \n b", "I'll", "x\r\n\t y", "!!!abc", "12 34"} {
		f.Add(s)
	}
	re := regexp2.MustCompile(qwenPattern, regexp2.None)
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || strings.ContainsRune(s, 'ſ') {
			t.Skip() // the scanner sees only valid UTF-8; .NET does not fold ſ to s
		}
		got := pieces(s)
		if strings.Join(got, "") != s {
			t.Fatalf("pieces(%q) = %q do not tile the input", s, got)
		}
		if want := referencePieces(t, re, s); !reflect.DeepEqual(got, want) {
			t.Fatalf("pieces(%q) = %q, reference engine gives %q", s, got, want)
		}
	})
}
