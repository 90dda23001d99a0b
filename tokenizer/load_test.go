package tokenizer

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tinyDoc returns the default tiny tokenizer.json as generic JSON, for tests to break.
func tinyDoc(t *testing.T) map[string]any {
	t.Helper()
	b, err := DefaultTinyConfig().JSON()
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func model(doc map[string]any) map[string]any { return doc["model"].(map[string]any) }

func TestParseRejects(t *testing.T) {
	byteLevel := func() map[string]any { return map[string]any{"type": "ByteLevel", "use_regex": false} }
	split := func(pattern string) map[string]any {
		return map[string]any{"type": "Split", "pattern": map[string]any{"Regex": pattern}, "behavior": "Isolated", "invert": false}
	}
	tests := []struct {
		name    string
		edit    func(doc map[string]any)
		wantErr error
		wantMsg string
	}{
		{"truncation", func(d map[string]any) { d["truncation"] = map[string]any{"max_length": 8} }, ErrUnsupported, "truncation"},
		{"padding", func(d map[string]any) { d["padding"] = map[string]any{"pad_id": 0} }, ErrUnsupported, "padding"},
		{"model type", func(d map[string]any) { model(d)["type"] = "WordPiece" }, ErrUnsupported, "WordPiece"},
		{"dropout", func(d map[string]any) { model(d)["dropout"] = 0.1 }, ErrUnsupported, "dropout"},
		{"subword prefix", func(d map[string]any) { model(d)["continuing_subword_prefix"] = "##" }, ErrUnsupported, "continuing_subword_prefix"},
		{"word suffix", func(d map[string]any) { model(d)["end_of_word_suffix"] = "</w>" }, ErrUnsupported, "end_of_word_suffix"},
		{"normalizer", func(d map[string]any) { d["normalizer"] = map[string]any{"type": "Lowercase"} }, ErrUnsupported, "Lowercase"},
		{"normalizer in sequence", func(d map[string]any) {
			d["normalizer"] = map[string]any{"type": "Sequence", "normalizers": []any{map[string]any{"type": "NFC"}, map[string]any{"type": "NFKC"}}}
		}, ErrUnsupported, "NFKC"},
		{"no pre-tokenizer", func(d map[string]any) { d["pre_tokenizer"] = nil }, ErrUnsupported, "pre_tokenizer"},
		{"GPT-2 pre-tokenizer", func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "ByteLevel", "use_regex": true}
		}, ErrUnsupported, "ByteLevel"},
		{"other split pattern", func(d map[string]any) {
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{split(`\s+`), byteLevel()}}
		}, ErrUnsupported, "Split pattern"},
		{"split behavior", func(d map[string]any) {
			s := split(qwenPattern)
			s["behavior"] = "Removed"
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{s, byteLevel()}}
		}, ErrUnsupported, "Removed"},
		{"byte level with regex", func(d map[string]any) {
			bl := byteLevel()
			bl["use_regex"] = true
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{split(qwenPattern), bl}}
		}, ErrUnsupported, "use_regex"},
		{"prefix space", func(d map[string]any) {
			bl := byteLevel()
			bl["add_prefix_space"] = true
			d["pre_tokenizer"] = map[string]any{"type": "Sequence", "pretokenizers": []any{split(qwenPattern), bl}}
		}, ErrUnsupported, "add_prefix_space"},
		{"template post-processor", func(d map[string]any) {
			d["post_processor"] = map[string]any{"type": "TemplateProcessing"}
		}, ErrUnsupported, "TemplateProcessing"},
		{"no decoder", func(d map[string]any) { d["decoder"] = nil }, ErrUnsupported, "decoder"},
		{"other decoder", func(d map[string]any) { d["decoder"] = map[string]any{"type": "WordPiece"} }, ErrUnsupported, "WordPiece"},
		{"missing byte symbol", func(d map[string]any) { delete(model(d)["vocab"].(map[string]any), "Ā") }, ErrUnsupported, "0x00"},
		{"no vocab", func(d map[string]any) { delete(model(d), "vocab") }, ErrBadTokenizer, "vocab"},
		{"negative id", func(d map[string]any) { model(d)["vocab"].(map[string]any)["zz"] = -1 }, ErrBadTokenizer, "zz"},
		{"shared id", func(d map[string]any) { model(d)["vocab"].(map[string]any)["zz"] = 5 }, ErrBadTokenizer, "id 5"},
		{"merge of unknown token", func(d map[string]any) {
			model(d)["merges"] = append(model(d)["merges"].([]any), []any{"Ġ", "zzz"})
		}, ErrBadTokenizer, "zzz"},
		{"merge making unknown token", func(d map[string]any) {
			model(d)["merges"] = append(model(d)["merges"].([]any), []any{"z", "z"})
		}, ErrBadTokenizer, `"z", "z"`},
		{"legacy merge with two spaces", func(d map[string]any) {
			model(d)["merges"] = []any{"a b c"}
		}, ErrBadTokenizer, "one space"},
		{"added token id clash", func(d map[string]any) {
			d["added_tokens"] = append(d["added_tokens"].([]any), map[string]any{"id": 3, "content": "<x>"})
		}, ErrBadTokenizer, "id 3"},
		{"added token in vocab with other id", func(d map[string]any) {
			d["added_tokens"] = append(d["added_tokens"].([]any), map[string]any{"id": 600, "content": "a"})
		}, ErrBadTokenizer, `"a"`},
		{"added token twice", func(d map[string]any) {
			d["added_tokens"] = append(d["added_tokens"].([]any), map[string]any{"id": 600, "content": "<step>"})
		}, ErrBadTokenizer, "<step>"},
		{"empty added token", func(d map[string]any) {
			d["added_tokens"] = append(d["added_tokens"].([]any), map[string]any{"id": 600, "content": ""})
		}, ErrBadTokenizer, "empty"},
		{"huge id", func(d map[string]any) {
			d["added_tokens"] = append(d["added_tokens"].([]any), map[string]any{"id": 1 << 40, "content": "<x>"})
		}, ErrBadTokenizer, "outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := tinyDoc(t)
			tt.edit(doc)
			data, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("Parse: err = %v, want %v mentioning %q", err, tt.wantErr, tt.wantMsg)
			}
		})
	}
}

func TestParseRejectsBadFiles(t *testing.T) {
	for _, data := range []string{"", "{", "[1]", "\xff{}", `{"model": {"vocab": {}, "merges": []}}`} {
		if _, err := Parse([]byte(data)); !errors.Is(err, ErrBadTokenizer) && !errors.Is(err, ErrUnsupported) {
			t.Errorf("Parse(%q): err = %v, want ErrBadTokenizer or ErrUnsupported", data, err)
		}
	}
}

func TestParseAcceptsLegacyMergesAndDefaults(t *testing.T) {
	doc := tinyDoc(t)
	var legacy []any
	for _, m := range model(doc)["merges"].([]any) {
		pair := m.([]any)
		legacy = append(legacy, pair[0].(string)+" "+pair[1].(string))
	}
	model(doc)["merges"] = legacy
	delete(model(doc), "type") // Hugging Face infers BPE from the fields
	doc["post_processor"] = nil
	data, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	ref := tiny(t)
	text := "<|im_start|>user\nUsing the numbers [1, 2], reach 3.<|im_end|>"
	if got, want := tok.Encode(text), ref.Encode(text); !slices.Equal(got, want) {
		t.Errorf("legacy merges encode %v, pair merges %v", got, want)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	if err := WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{dir, filepath.Join(dir, FileName)} {
		if _, err := Load(path); err != nil {
			t.Errorf("Load(%s): %v", path, err)
		}
	}
	if _, err := Load(filepath.Join(dir, "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing): err = %v, want not-exist", err)
	}
	empty := t.TempDir()
	if _, err := Load(empty); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(dir without tokenizer.json): err = %v, want not-exist", err)
	}
}

// FuzzParse feeds Parse broken tokenizer files: it must return one of its errors, never panic,
// and what it accepts must encode and decode.
func FuzzParse(f *testing.F) {
	seed, err := (TinyConfig{Corpus: "ab ab ab", Merges: 3}).JSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"model": {"vocab": {}, "merges": []}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tok, err := Parse(data)
		if err != nil {
			if !errors.Is(err, ErrBadTokenizer) && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("Parse: unexpected error kind: %v", err)
			}
			return
		}
		text := "<|im_start|>ab abc\n"
		if got := tok.Decode(tok.Encode(text)); got == "" {
			t.Fatalf("accepted tokenizer lost %q", text)
		}
	})
}

// TestIgnoreMerges: with ignore_merges a piece that is itself in the vocabulary is that token,
// even when no merges lead to it.
func TestIgnoreMerges(t *testing.T) {
	for _, ignore := range []bool{false, true} {
		doc := tinyDoc(t)
		model(doc)["vocab"].(map[string]any)["xyzzy"] = 600
		model(doc)["ignore_merges"] = ignore
		got := parseDoc(t, doc).Encode("xyzzy")
		if single := len(got) == 1 && got[0] == 600; single != ignore {
			t.Errorf("ignore_merges=%v: Encode(xyzzy) = %v", ignore, got)
		}
	}
}

func TestByteLevelAlphabet(t *testing.T) {
	seen := map[string]bool{}
	for b := range 256 {
		c := byteChars[b]
		if seen[c] {
			t.Fatalf("byte 0x%02x shares its symbol %q", b, c)
		}
		seen[c] = true
		raw, ok := appendFromByteLevel(nil, c)
		if !ok || len(raw) != 1 || raw[0] != byte(b) {
			t.Errorf("symbol %q decodes to %v, %v; want 0x%02x", c, raw, ok, b)
		}
	}
	if byteChars[' '] != "Ġ" || byteChars['\n'] != "Ċ" || byteChars['a'] != "a" {
		t.Errorf("space, newline, a = %q %q %q", byteChars[' '], byteChars['\n'], byteChars['a'])
	}
	if raw, ok := appendFromByteLevel([]byte("k"), "a b"); ok || string(raw) != "k" {
		t.Errorf("a raw space is outside the alphabet: got %q, %v", raw, ok)
	}
}
