package tokenizer

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// tiny parses the default tiny vocabulary.
func tiny(t testing.TB) *BPE {
	t.Helper()
	b, err := DefaultTinyConfig().JSON()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func parseDoc(t *testing.T, doc map[string]any) *BPE {
	t.Helper()
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestTinyGolden pins the default tiny vocabulary: tiny models trained on it depend on every id.
func TestTinyGolden(t *testing.T) {
	got, err := DefaultTinyConfig().JSON()
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "tiny", FileName)
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the tiny tokenizer.json differs from %s (run go test -update if the change is intended)", golden)
	}
}

func TestTinyVocabulary(t *testing.T) {
	tok := tiny(t)
	if n := tok.VocabSize(); n > MaxTinyVocab || n <= 256+len(tinySpecial)+len(DefaultTinyConfig().Markers) {
		t.Errorf("VocabSize() = %d, want learned merges and at most %d", n, MaxTinyVocab)
	}
	for _, s := range slices.Concat(tinySpecial, DefaultTinyConfig().Markers) {
		id, ok := tok.TokenID(s)
		if !ok {
			t.Fatalf("no id for %q", s)
		}
		if got := tok.Encode(s); !slices.Equal(got, []int32{id}) {
			t.Errorf("Encode(%q) = %v, want [%d]", s, got, id)
		}
		if _, special := tok.SpecialID(s); special != slices.Contains(tinySpecial, s) {
			t.Errorf("SpecialID(%q) ok = %v", s, special)
		}
	}
	digits := "0123456789"
	if got := tok.Encode(digits); len(got) != len(digits) {
		t.Errorf("Encode(%q) = %v, want one token per digit", digits, got)
	}
	text := ChatML([]Message{{Role: "user", Content: "Using the numbers [3, 7, 12, 5], create an equation that equals 24."}}, true)
	if ids := tok.Encode(text); len(ids) >= len(text)/2 {
		t.Errorf("the merges barely compress: %d bytes gave %d tokens", len(text), len(ids))
	}
}

// TestTinyEncodesAnyText: with all 256 bytes in the vocabulary, any text survives the round trip.
func TestTinyEncodesAnyText(t *testing.T) {
	tok := tiny(t)
	rng := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = byte(rng.IntN(256))
		}
		s := string(b)
		if got, want := tok.Decode(tok.Encode(s)), nfc(validUTF8(s)); got != want {
			t.Fatalf("Decode(Encode(%q)) = %q, want %q", s, got, want)
		}
	}
}

func TestTinyConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		merges  int
		wantErr bool
	}{
		{"bytes only", 0, false},
		{"default", DefaultTinyConfig().Merges, false},
		{"largest", MaxTinyVocab - 263, false},
		{"too many", MaxTinyVocab - 262, true},
		{"negative", -1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultTinyConfig()
			cfg.Merges = tt.merges
			err := cfg.Validate()
			if (err != nil) != tt.wantErr || err != nil && !errors.Is(err, ErrBadTinyConfig) {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if _, err := cfg.JSON(); (err != nil) != tt.wantErr {
				t.Fatalf("JSON: %v, want error %v", err, tt.wantErr)
			}
		})
	}
}

func TestTinyBytesOnly(t *testing.T) {
	cfg := DefaultTinyConfig()
	cfg.Merges = 0
	b, err := cfg.JSON()
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := tok.VocabSize(), 256+len(tinySpecial)+len(DefaultTinyConfig().Markers); got != want {
		t.Errorf("VocabSize() = %d, want %d", got, want)
	}
	if got := tok.Encode("hello"); len(got) != 5 {
		t.Errorf("Encode(hello) = %v, want 5 byte tokens", got)
	}
}

// TestCorpusTags: the default markers are the built-in corpus's tags, in order of first use
// (their ids are pinned by the golden file); ChatML's specials and malformed tags are not tags.
func TestCorpusTags(t *testing.T) {
	if got, want := DefaultTinyConfig().Markers, []string{"<step>", "</step>", "<answer>", "</answer>"}; !slices.Equal(got, want) {
		t.Errorf("default markers %q, want %q", got, want)
	}
	got := CorpusTags("<|im_start|>a<b></b><b><c1><> </ d><x>y</x")
	if want := []string{"<b>", "</b>", "<x>"}; !slices.Equal(got, want) {
		t.Errorf("CorpusTags = %q, want %q", got, want)
	}
	for _, bad := range [][]string{{""}, {"<|im_end|>"}, {"<a>", "<a>"}} {
		cfg := DefaultTinyConfig()
		cfg.Markers = bad
		if err := cfg.Validate(); !errors.Is(err, ErrBadTinyConfig) {
			t.Errorf("markers %q: %v, want ErrBadTinyConfig", bad, err)
		}
	}
}

// TestLearnMergesOrder checks the trainer on a corpus whose merges are known by hand.
func TestLearnMergesOrder(t *testing.T) {
	_, merges := learnMerges("ab ab ab abc abc", 10, nil)
	want := [][2]string{{"a", "b"}, {"Ġ", "ab"}, {"Ġab", "c"}}
	if !slices.Equal(merges, want) {
		t.Errorf("merges = %q, want %q", merges, want)
	}
}

func TestWriteTiny(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new")
	if err := WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	b, err := os.ReadFile(filepath.Join(dir, "tokenizer_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg["eos_token"] != "<|im_end|>" || !strings.Contains(cfg["chat_template"].(string), "<|im_start|>") {
		t.Errorf("tokenizer_config.json = %s", b)
	}
	if err := (TinyConfig{Merges: -1}).Write(dir); !errors.Is(err, ErrBadTinyConfig) {
		t.Errorf("WriteTiny with a bad config: %v", err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := WriteTiny(filepath.Join(file, "sub")); err == nil {
		t.Errorf("WriteTiny under a regular file succeeded")
	}
}
