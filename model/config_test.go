package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tinyConfigJSON is the tiny preset as config.json with one key replaced by value.
func tinyConfigJSON(t testing.TB, key string, value any) []byte {
	t.Helper()
	c, err := Preset("tiny", 480)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if key != "" {
		m[key] = value
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestReadConfigBadDims: a config.json whose dimensions are zero or negative is refused with
// ErrConfig naming the file and the key; none makes the reader divide by zero.
func TestReadConfigBadDims(t *testing.T) {
	for _, c := range []struct {
		key   string
		value any
		want  string
	}{
		{"num_attention_heads", 0, "num_attention_heads"},
		{"num_attention_heads", -4, "num_attention_heads"},
		{"num_key_value_heads", 0, "num_key_value_heads"},
		{"num_key_value_heads", -2, "num_key_value_heads"},
		{"hidden_size", 0, "hidden_size"},
		{"hidden_size", -128, "hidden_size"},
		{"intermediate_size", 0, "intermediate_size"},
		{"num_hidden_layers", -1, "num_hidden_layers"},
		{"vocab_size", 0, "vocab_size"},
		{"max_position_embeddings", -1, "max_position_embeddings"},
		{"tsd_value_hidden", -1, "tsd_value_hidden"},
		{"num_attention_heads", 3, "multiple of num_attention_heads"},
		{"num_attention_heads", "four", "num_attention_heads"},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "config.json")
		if err := os.WriteFile(path, tinyConfigJSON(t, c.key, c.value), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := ReadConfig(dir)
		if !errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s = %v: %v, want ErrConfig naming %s and %q", c.key, c.value, err, path, c.want)
		}
	}
	if _, err := ParseConfig(tinyConfigJSON(t, "", nil)); err != nil {
		t.Fatalf("the tiny preset itself: %v", err)
	}
}

// FuzzParseConfig: no config.json, however damaged, panics the reader; one it accepts can be
// built (every dimension positive and divisible as the model needs).
func FuzzParseConfig(f *testing.F) {
	f.Add(tinyConfigJSON(f, "", nil))
	f.Add(tinyConfigJSON(f, "num_attention_heads", 0))
	f.Add(tinyConfigJSON(f, "num_key_value_heads", 0))
	f.Add(tinyConfigJSON(f, "hidden_size", -1))
	f.Add(tinyConfigJSON(f, "rope_scaling", map[string]any{"type": "yarn"}))
	f.Add([]byte(`{"model_type":"qwen2","hidden_size":8,"num_attention_heads":0}`))
	f.Add([]byte(`{"model_type":"qwen2"`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseConfig(b)
		if err != nil {
			if !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			return
		}
		if c.NumAttentionHeads <= 0 || c.NumKeyValueHeads <= 0 || c.HeadDim() <= 0 || c.HeadDim()%2 != 0 ||
			c.NumAttentionHeads%c.NumKeyValueHeads != 0 || c.IntermediateSize <= 0 || c.NumHiddenLayers <= 0 ||
			c.VocabSize <= 0 || c.ValueWidth() <= 0 {
			t.Errorf("accepted a config the model cannot be built from: %+v", c)
		}
	})
}
