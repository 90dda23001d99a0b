package model

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"tsd/tensor"
)

// Config is a Hugging Face Qwen2 config.json. Keys this package does not use are kept in Extra and
// written back unchanged, so a saved checkpoint stays loadable by transformers.
type Config struct {
	Architectures         []string `json:"architectures"`
	ModelType             string   `json:"model_type"`
	HiddenSize            int      `json:"hidden_size"`
	IntermediateSize      int      `json:"intermediate_size"`
	NumHiddenLayers       int      `json:"num_hidden_layers"`
	NumAttentionHeads     int      `json:"num_attention_heads"`
	NumKeyValueHeads      int      `json:"num_key_value_heads"`
	VocabSize             int      `json:"vocab_size"`
	RMSNormEps            float64  `json:"rms_norm_eps"`
	RopeTheta             float64  `json:"rope_theta"`
	HiddenAct             string   `json:"hidden_act"`
	MaxPositionEmbeddings int      `json:"max_position_embeddings"`
	TieWordEmbeddings     bool     `json:"tie_word_embeddings"`
	TorchDtype            string   `json:"torch_dtype,omitempty"`
	// ValueHidden is the width of the value head's hidden layers (tsd's own key; transformers keeps
	// unknown keys as attributes and otherwise ignores them). 0 means 4·hidden_size, the source's.
	ValueHidden int `json:"tsd_value_hidden,omitempty"`

	Extra map[string]json.RawMessage `json:"-"`
}

// HeadDim is the width of one attention head.
func (c Config) HeadDim() int { return c.HiddenSize / c.NumAttentionHeads }

// ValueWidth is the value head's hidden width.
func (c Config) ValueWidth() int {
	if c.ValueHidden > 0 {
		return c.ValueHidden
	}
	return 4 * c.HiddenSize
}

// maxDim bounds every size in a config, far above any real model's, so that products of sizes
// (4·hidden_size, tensor shapes) cannot overflow.
const maxDim = 1 << 24

// Validate reports the first thing in c this implementation cannot run.
func (c Config) Validate() error {
	if c.ModelType != "qwen2" && !containsStr(c.Architectures, "Qwen2ForCausalLM") {
		return fmt.Errorf("%w: architecture %v / model_type %q is not Qwen2ForCausalLM", ErrConfig, c.Architectures, c.ModelType)
	}
	// Each check may divide by a field an earlier one proved positive, never one it has not: a
	// damaged config.json gets an error, not a division by zero.
	checks := []struct {
		ok   func() bool
		what string
	}{
		{func() bool { return c.HiddenSize > 0 }, "hidden_size must be > 0"},
		{func() bool { return c.IntermediateSize > 0 }, "intermediate_size must be > 0"},
		{func() bool { return c.NumHiddenLayers > 0 }, "num_hidden_layers must be > 0"},
		{func() bool { return c.NumAttentionHeads > 0 }, "num_attention_heads must be > 0"},
		{func() bool {
			return max(c.HiddenSize, c.IntermediateSize, c.NumHiddenLayers, c.NumAttentionHeads, c.NumKeyValueHeads,
				c.VocabSize, c.ValueHidden, c.MaxPositionEmbeddings) <= maxDim
		}, "every dimension must be at most 2^24"},
		{func() bool { return c.NumKeyValueHeads > 0 }, "num_key_value_heads must be > 0"},
		{func() bool { return c.HiddenSize%c.NumAttentionHeads == 0 }, "hidden_size must be a multiple of num_attention_heads"},
		{func() bool { return c.NumAttentionHeads%c.NumKeyValueHeads == 0 }, "num_attention_heads must be a multiple of num_key_value_heads"},
		{func() bool { return c.HeadDim()%2 == 0 }, "head dim must be even (rotary embedding)"},
		{func() bool { return c.MaxPositionEmbeddings >= 0 }, "max_position_embeddings must be >= 0"},
		{func() bool { return c.VocabSize > 0 }, "vocab_size must be > 0"},
		{func() bool { return c.RMSNormEps > 0 }, "rms_norm_eps must be > 0"},
		{func() bool { return c.RopeTheta > 0 }, "rope_theta must be > 0"},
		{func() bool { return c.HiddenAct == "" || c.HiddenAct == "silu" }, "hidden_act must be silu"},
		{func() bool { return c.ValueHidden >= 0 }, "tsd_value_hidden must be >= 0"},
	}
	for _, ch := range checks {
		if !ch.ok() {
			return fmt.Errorf("%w: %s", ErrConfig, ch.what)
		}
	}
	if raw, ok := c.Extra["rope_scaling"]; ok && string(raw) != "null" {
		return fmt.Errorf("%w: rope_scaling %s is not supported", ErrConfig, raw)
	}
	if raw, ok := c.Extra["use_sliding_window"]; ok && string(raw) == "true" {
		return fmt.Errorf("%w: use_sliding_window is not supported", ErrConfig)
	}
	return nil
}

// UnmarshalJSON reads the known keys and keeps the rest in Extra.
func (c *Config) UnmarshalJSON(b []byte) error {
	type plain Config
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	for _, k := range knownKeys() {
		delete(all, k)
	}
	*c = Config(p)
	c.Extra = all
	return nil
}

// MarshalJSON writes the known keys and Extra, sorted, indented like transformers does.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain Config
	b, err := json.Marshal(plain(c))
	if err != nil {
		return nil, err
	}
	merged := map[string]json.RawMessage{}
	if err := json.Unmarshal(b, &merged); err != nil {
		return nil, err
	}
	for k, v := range c.Extra {
		if _, known := merged[k]; !known {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := []byte("{\n")
	for i, k := range keys {
		kb, _ := json.Marshal(k)
		out = append(out, "  "...)
		out = append(out, kb...)
		out = append(out, ": "...)
		out = append(out, merged[k]...)
		if i < len(keys)-1 {
			out = append(out, ',')
		}
		out = append(out, '\n')
	}
	return append(out, "}\n"...), nil
}

func knownKeys() []string {
	return []string{"architectures", "model_type", "hidden_size", "intermediate_size", "num_hidden_layers",
		"num_attention_heads", "num_key_value_heads", "vocab_size", "rms_norm_eps", "rope_theta", "hidden_act",
		"max_position_embeddings", "tie_word_embeddings", "torch_dtype", "tsd_value_hidden"}
}

// ReadConfig reads dir/config.json and validates it; an error names the file.
func ReadConfig(dir string) (Config, error) {
	path := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// ParseConfig decodes and validates the bytes of a config.json.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	if err := json.Unmarshal(b, &c); err != nil {
		return Config{}, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	return c, c.Validate()
}

// WriteConfig writes c as dir/config.json.
func WriteConfig(dir string, c Config) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return tensor.WriteFileAtomic(filepath.Join(dir, "config.json"), func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Preset returns a named config: "tiny" (a few hundred thousand parameters, for tests and the CPU
// demo; vocab sized for the tiny tokenizer) or "qwen2.5-1.5b" (Qwen2.5-1.5B-Instruct's shape).
func Preset(name string, vocab int) (Config, error) {
	base := Config{
		Architectures: []string{"Qwen2ForCausalLM"}, ModelType: "qwen2", HiddenAct: "silu",
		RMSNormEps: 1e-6, RopeTheta: 1e6, TorchDtype: "float32",
		Extra: map[string]json.RawMessage{"bos_token_id": json.RawMessage("null"), "use_sliding_window": json.RawMessage("false")},
	}
	switch name {
	case "tiny":
		base.HiddenSize, base.IntermediateSize = 128, 352
		base.NumHiddenLayers, base.NumAttentionHeads, base.NumKeyValueHeads = 4, 4, 2
		base.MaxPositionEmbeddings, base.TieWordEmbeddings = 2048, true
	case "qwen2.5-1.5b":
		base.HiddenSize, base.IntermediateSize = 1536, 8960
		base.NumHiddenLayers, base.NumAttentionHeads, base.NumKeyValueHeads = 28, 12, 2
		base.MaxPositionEmbeddings, base.TieWordEmbeddings = 32768, true
		base.TorchDtype = "bfloat16"
	default:
		return Config{}, fmt.Errorf("%w: unknown preset %q (tiny, qwen2.5-1.5b)", ErrConfig, name)
	}
	if vocab <= 0 {
		vocab = 151936
	}
	base.VocabSize = vocab
	return base, base.Validate()
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
