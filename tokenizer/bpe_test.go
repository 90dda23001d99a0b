package tokenizer

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"testing"

	"golang.org/x/text/unicode/norm"
)

const qwenDir = "testdata/qwen"

var (
	qwenOnce sync.Once
	qwenTok  *BPE
	qwenErr  error
)

// qwen loads the Qwen2.5 tokenizer once for all tests.
func qwen(t testing.TB) *BPE {
	t.Helper()
	qwenOnce.Do(func() { qwenTok, qwenErr = Load(qwenDir) })
	if qwenErr != nil {
		t.Fatal(qwenErr)
	}
	return qwenTok
}

// fixtureCase is one line of golden.jsonl or fuzz.jsonl: ids from Hugging Face's tokenizers 0.23.2.
type fixtureCase struct {
	Name    string  `json:"name"`
	Text    string  `json:"text"`
	IDs     []int32 `json:"ids"`
	Decoded *string `json:"decoded"`
}

func readFixture(t testing.TB, path string) []fixtureCase {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cases []fixtureCase
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c fixtureCase
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return cases
}

func TestEncodeMatchesHuggingFace(t *testing.T) {
	tok := qwen(t)
	for _, file := range []string{"golden.jsonl", "fuzz.jsonl"} {
		cases := readFixture(t, qwenDir+"/"+file)
		if len(cases) == 0 {
			t.Fatalf("%s has no cases", file)
		}
		t.Run(file, func(t *testing.T) {
			failed := 0
			for _, c := range cases {
				if got := tok.Encode(c.Text); !slices.Equal(got, c.IDs) {
					failed++
					if failed <= 10 {
						t.Errorf("%s: Encode(%q)\n got %v\nwant %v", c.Name, c.Text, got, c.IDs)
					}
				}
			}
			if failed > 0 {
				t.Errorf("%d of %d cases differ", failed, len(cases))
			}
		})
	}
}

func TestDecodeMatchesHuggingFace(t *testing.T) {
	tok := qwen(t)
	for _, file := range []string{"golden.jsonl", "fuzz.jsonl"} {
		t.Run(file, func(t *testing.T) {
			for _, c := range readFixture(t, qwenDir+"/"+file) {
				want := norm.NFC.String(c.Text)
				if c.Decoded != nil {
					want = *c.Decoded
				}
				if got := tok.Decode(c.IDs); got != want {
					t.Errorf("%s: Decode(%v) = %q, want %q", c.Name, c.IDs, got, want)
				}
			}
		})
	}
}

func TestLookups(t *testing.T) {
	tok := qwen(t)
	if got := tok.VocabSize(); got != 151665 {
		t.Errorf("VocabSize() = %d, want 151665", got)
	}
	ids := []struct {
		tok string
		id  int32
	}{{"!", 0}, {"Ġthe", 279}, {"<|endoftext|>", 151643}, {"<|im_start|>", 151644}, {"<|im_end|>", 151645}, {"<|file_sep|>", 151664}}
	for _, x := range ids {
		if id, ok := tok.TokenID(x.tok); !ok || id != x.id {
			t.Errorf("TokenID(%q) = %d, %v; want %d", x.tok, id, ok, x.id)
		}
		if s := tok.Token(x.id); s != x.tok {
			t.Errorf("Token(%d) = %q, want %q", x.id, s, x.tok)
		}
	}
	for _, id := range []int32{-1, 151665, 151935} {
		if s := tok.Token(id); s != "" {
			t.Errorf("Token(%d) = %q, want not found", id, s)
		}
	}
	if _, ok := tok.TokenID(" the"); ok {
		t.Errorf("TokenID found a raw-space spelling; tokenizer.json spells a space Ġ")
	}
	specials := []struct {
		content string
		special bool
	}{{"<|endoftext|>", true}, {"<|im_end|>", true}, {"<tool_call>", false}, {"<|fim_prefix|>", false}, {"Ġthe", false}}
	for _, s := range specials {
		id, ok := tok.SpecialID(s.content)
		if ok != s.special {
			t.Errorf("SpecialID(%q) ok = %v, want %v", s.content, ok, s.special)
		}
		if any, _ := tok.TokenID(s.content); tok.IsSpecial(any) != s.special {
			t.Errorf("IsSpecial(%d) = %v, want %v", id, !s.special, s.special)
		}
	}
}

func TestEncodeEdgeCases(t *testing.T) {
	tok := qwen(t)
	tests := []struct {
		name   string
		in     string
		sameAs string
	}{
		{"invalid UTF-8 is replaced", "a\xffb\xF0\x9F\x98", "a\uFFFDb\uFFFD"},
		{"stray continuation bytes", "\x80\x80", "\uFFFD\uFFFD"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, want := tok.Encode(tt.in), tok.Encode(tt.sameAs); !slices.Equal(got, want) {
				t.Errorf("Encode(%q) = %v, want Encode(%q) = %v", tt.in, got, tt.sameAs, want)
			}
		})
	}
	if got := tok.Encode(""); len(got) != 0 {
		t.Errorf("Encode(\"\") = %v", got)
	}
	if got := tok.Decode(nil); got != "" {
		t.Errorf("Decode(nil) = %q", got)
	}
	if got := tok.Decode([]int32{-5, 9707, 999999, 1879}); got != "Hello world" {
		t.Errorf("Decode skips unknown ids: got %q", got)
	}
	cut := tok.Encode("\u200d") // zero-width joiner: E2 80 8D, two tokens
	if len(cut) < 2 {
		t.Fatalf("Encode(ZWJ) = %v, want several tokens for this test", cut)
	}
	if got := tok.Decode(cut[:1]); got != "\uFFFD" {
		t.Errorf("Decode of a cut character = %q, want one U+FFFD", got)
	}
}

// TestRoundTrip: decoding what Encode gives returns the NFC form of the text.
func TestRoundTrip(t *testing.T) {
	tok := qwen(t)
	rng := rand.New(rand.NewPCG(9, 9))
	alphabet := []rune("aé\u0301e語 \t\n\r0½'sS!<|>😀\u00a0\u0085\u200dÅ\u212b\u1100\u1161")
	for range 3000 {
		s := randomText(rng, alphabet, 30)
		if got, want := tok.Decode(tok.Encode(s)), norm.NFC.String(s); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
}

// TestConcurrentEncode runs Encode from many goroutines (run it with -race) and EncodeBatch
// against the fixture.
func TestConcurrentEncode(t *testing.T) {
	tok := qwen(t)
	cases := readFixture(t, qwenDir+"/fuzz.jsonl")[:1000]
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range cases {
				c := cases[(i+g*97)%len(cases)]
				if !slices.Equal(tok.Encode(c.Text), c.IDs) {
					errs <- c.Name
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for name := range errs {
		t.Errorf("concurrent Encode differs on %s", name)
	}
	texts := make([]string, len(cases))
	for i, c := range cases {
		texts[i] = c.Text
	}
	for i, ids := range tok.EncodeBatch(texts) {
		if !slices.Equal(ids, cases[i].IDs) {
			t.Fatalf("EncodeBatch differs on %s", cases[i].Name)
		}
	}
	if got := tok.EncodeBatch(nil); len(got) != 0 {
		t.Errorf("EncodeBatch(nil) = %v", got)
	}
}

// TestCacheBounded fills the word cache past its size and checks it stays bounded and correct.
func TestCacheBounded(t *testing.T) {
	tok := qwen(t)
	for i := range cacheShards * cacheShardSize * 2 {
		tok.Encode(fmt.Sprintf(" w%dx", i))
	}
	for i := range tok.cache.shards {
		if n := len(tok.cache.shards[i].m); n > cacheShardSize {
			t.Errorf("shard %d holds %d words, more than %d", i, n, cacheShardSize)
		}
	}
	if got := tok.Encode("Hello world"); !slices.Equal(got, []int32{9707, 1879}) {
		t.Errorf("after churn Encode(Hello world) = %v", got)
	}
}
