package tokenizer

import (
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestForEachVocab(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    map[string]int64
		wantErr bool
	}{
		{"empty", `{}`, map[string]int64{}, false},
		{"plain", ` { "a" : 0 , "Ġb": 12 } `, map[string]int64{"a": 0, "Ġb": 12}, false},
		{"escapes", `{"\"\\\/\b\f\n\r\t": 1, "\u0120x": 2, "\ud83d\ude00": 3, "\ud800": 4}`,
			map[string]int64{"\"\\/\b\f\n\r\t": 1, "Ġx": 2, "😀": 3, "\uFFFD": 4}, false},
		{"fraction", `{"a": 1.5}`, nil, true},
		{"exponent", `{"a": 1e3}`, nil, true},
		{"leading zero", `{"a": 01}`, nil, true},
		{"string id", `{"a": "1"}`, nil, true},
		{"trailing comma", `{"a": 1,}`, nil, true},
		{"unterminated", `{"a`, nil, true},
		{"control char", "{\"a\x01\": 1}", nil, true},
		{"bad escape", `{"\q": 1}`, nil, true},
		{"trailing data", `{"a": 1} x`, nil, true},
		{"not an object", `["a", 1]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := map[string]int64{}
			err := forEachVocab([]byte(tt.in), func(tok string, id int64) error {
				got[tok] = id
				return nil
			})
			if tt.wantErr {
				if !errors.Is(err, ErrBadTokenizer) {
					t.Fatalf("err = %v, want ErrBadTokenizer", err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestForEachMerge(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    [][2]string
		wantErr bool
	}{
		{"legacy", `["a b", "Ġ t"]`, [][2]string{{"a", "b"}, {"Ġ", "t"}}, false},
		{"pairs", `[["a", "b"], ["a b", "c"]]`, [][2]string{{"a", "b"}, {"a b", "c"}}, false},
		{"mixed", `["a b", ["c", "d"]]`, [][2]string{{"a", "b"}, {"c", "d"}}, false},
		{"legacy two spaces", `["a b c"]`, nil, true},
		{"legacy no space", `["ab"]`, nil, true},
		{"triple", `[["a", "b", "c"]]`, nil, true},
		{"number", `[1]`, nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got [][2]string
			err := forEachMerge([]byte(tt.in), func(a, b []byte) error {
				got = append(got, [2]string{string(a), string(b)})
				return nil
			})
			if tt.wantErr {
				if !errors.Is(err, ErrBadTokenizer) {
					t.Fatalf("err = %v, want ErrBadTokenizer", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

// FuzzForEachVocab checks the hand-written reader against encoding/json.
func FuzzForEachVocab(f *testing.F) {
	for _, s := range []string{`{}`, `{"a": 1, "b": 2}`, `{"\u00e9": 3}`, `{"a": -0}`, `{"\ud83d\ude00": 1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got := map[string]int64{}
		err := forEachVocab(data, func(tok string, id int64) error {
			got[tok] = id
			return nil
		})
		var want map[string]int64
		switch wantErr := json.Unmarshal(data, &want); {
		case !utf8.Valid(data):
			// Parse rejects a file that is not UTF-8 before reading it; encoding/json would not.
		case wantErr == nil && want != nil:
			if err != nil || !maps.Equal(got, want) {
				t.Fatalf("read %q as %v, %v; encoding/json as %v", data, got, err, want)
			}
		case wantErr != nil && err == nil:
			t.Fatalf("accepted %q, which encoding/json rejects: %v", data, wantErr)
		}
	})
}

func TestSplitDocument(t *testing.T) {
	rest, vocab, merges, err := splitDocument([]byte(`{"a": [1, {"b": "x\"y"}], "model": {"type": "BPE", "vocab": {"q": 0}, "merges": ["q q"]}, "c": null}`))
	if err != nil {
		t.Fatal(err)
	}
	if string(vocab) != `{"q": 0}` || string(merges) != `["q q"]` {
		t.Errorf("vocab %s, merges %s", vocab, merges)
	}
	var doc map[string]any
	if err := json.Unmarshal(rest, &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": []any{1.0, map[string]any{"b": `x"y`}}, "model": map[string]any{"type": "BPE"}, "c": nil}
	if !reflect.DeepEqual(doc, want) {
		t.Errorf("rest = %s", rest)
	}
	bad := []string{``, `[]`, `{"model": [1]}`, `{"x": tru}x`, `{"x": tru}`, `{"x": "x}`, `{"x": 1,}`, `{"x": {"b" 1}}`, `{"x": }`,
		`{"x": ` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`}
	for _, in := range bad {
		if _, _, _, err := splitDocument([]byte(in)); !errors.Is(err, ErrBadTokenizer) {
			t.Errorf("splitDocument(%.40q): err = %v, want ErrBadTokenizer", in, err)
		}
	}
}
