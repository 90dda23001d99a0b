package tokenizer

import (
	"bufio"
	"encoding/json"
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
