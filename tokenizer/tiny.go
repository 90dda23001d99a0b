package tokenizer

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The tiny vocabulary is for the small model the project trains on CPU: the 256 byte symbols (so
// it encodes any text, and digits stay one token each), a few hundred merges learned from
// Countdown-style chat text, and the chat and format markers as added tokens. Its tokenizer.json
// has Qwen's schema, so Load and Hugging Face's libraries read it alike.

// tinySpecial are the tiny vocabulary's special added tokens (which decoders may skip); its
// ordinary added tokens are TinyConfig.Markers.
var tinySpecial = []string{EndOfText, IMStart, IMEnd}

// MaxTinyVocab bounds the tiny vocabulary so the tiny model's embedding stays small.
const MaxTinyVocab = 511

//go:embed tiny_corpus.txt
var tinyCorpus string

// TinyConfig says how to build the tiny vocabulary.
type TinyConfig struct {
	// Corpus is the text the merges are learned from. Added tokens in it are taken out first,
	// then, inside each pre-tokenized piece, the most frequent adjacent pair of symbols becomes
	// the next merge (ties go to the pair of lower ids), until Merges are learned or no pair
	// occurs twice.
	Corpus string
	// Merges is how many merges to learn at most: 0 gives a pure byte-level vocabulary. The
	// vocabulary holds 256 byte symbols, the new tokens, the 3 special tokens and the Markers,
	// at most MaxTinyVocab.
	Merges int
	// Markers become ordinary added tokens (one id each, never split), after the special ones:
	// a task's format markers.
	Markers []string
}

// DefaultTinyConfig learns 240 merges (503 ids in all) from a built-in Countdown chat corpus;
// its markers are the corpus's tags (see CorpusTags).
func DefaultTinyConfig() TinyConfig {
	return TinyConfig{Corpus: tinyCorpus, Merges: 240, Markers: CorpusTags(tinyCorpus)}
}

// CorpusTags lists the tags (<name> and </name>, name in lower-case ASCII letters) that corpus
// uses, in order of first use: the format markers of the text a tiny vocabulary is learned from.
func CorpusTags(corpus string) []string {
	var tags []string
	seen := map[string]bool{}
	for i := 0; i < len(corpus); i++ {
		if corpus[i] != '<' {
			continue
		}
		j := i + 1
		if j < len(corpus) && corpus[j] == '/' {
			j++
		}
		k := j
		for k < len(corpus) && corpus[k] >= 'a' && corpus[k] <= 'z' {
			k++
		}
		if k == j || k == len(corpus) || corpus[k] != '>' {
			continue
		}
		if tag := corpus[i : k+1]; !seen[tag] {
			seen[tag] = true
			tags = append(tags, tag)
		}
	}
	return tags
}

// Validate reports whether the configuration can produce a vocabulary within MaxTinyVocab.
func (c TinyConfig) Validate() error {
	for i, m := range c.Markers {
		if m == "" || slices.Contains(tinySpecial, m) || slices.Contains(c.Markers[:i], m) {
			return fmt.Errorf("%w: marker %q is empty, special or repeated", ErrBadTinyConfig, m)
		}
	}
	limit := MaxTinyVocab - 256 - len(tinySpecial) - len(c.Markers)
	if c.Merges < 0 || c.Merges > limit {
		return fmt.Errorf("%w: Merges %d outside [0, %d]", ErrBadTinyConfig, c.Merges, limit)
	}
	return nil
}

// WriteTiny writes the default tiny vocabulary into dir, as DefaultTinyConfig().Write(dir).
func WriteTiny(dir string) error { return DefaultTinyConfig().Write(dir) }

// Write writes the tiny vocabulary to dir/tokenizer.json (creating dir) together with a
// tokenizer_config.json that lets Hugging Face's AutoTokenizer load the directory.
func (c TinyConfig) Write(dir string) error {
	tj, err := c.JSON()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("write tiny tokenizer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, FileName), tj, 0o644); err != nil {
		return fmt.Errorf("write tiny tokenizer: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tokenizer_config.json"), tinyConfigJSON(), 0o644); err != nil {
		return fmt.Errorf("write tiny tokenizer: %w", err)
	}
	return nil
}

// JSON returns the tokenizer.json of the tiny vocabulary that c describes.
func (c TinyConfig) JSON() ([]byte, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	tokens, merges := learnMerges(c.Corpus, c.Merges, c.Markers)
	return marshalTokenizer(tokens, merges, c.Markers)
}

// learnMerges returns the vocabulary (byte symbols, then merged tokens, in byte-level spelling)
// and the merges learned from corpus, in the order learned.
func learnMerges(corpus string, n int, markers []string) (tokens []string, merges [][2]string) {
	for b := range 256 {
		tokens = append(tokens, byteChars[b])
	}
	words, counts := corpusWords(corpus, markers)
	index := make(map[string]int32, len(tokens)+n)
	for id, tok := range tokens {
		index[tok] = int32(id)
	}
	for len(merges) < n {
		left, right, ok := bestPair(words, counts)
		if !ok {
			break
		}
		tok := tokens[left] + tokens[right]
		id, seen := index[tok] // two merges can spell the same token
		if !seen {
			id = int32(len(tokens))
			tokens = append(tokens, tok)
			index[tok] = id
		}
		merges = append(merges, [2]string{tokens[left], tokens[right]})
		for i, w := range words {
			words[i] = mergePair(w, left, right, id)
		}
	}
	return tokens, merges
}

// corpusWords pre-tokenizes corpus as encoding will (added tokens out, NFC, Qwen's pattern) and
// returns each distinct piece as byte ids, sorted for determinism, with its count.
func corpusWords(corpus string, markers []string) (words [][]int32, counts []int) {
	var added []*addedToken
	for _, c := range slices.Concat(tinySpecial, markers) {
		added = append(added, &addedToken{content: c})
	}
	freq := map[string]int{}
	newAddedMatcher(added, identity).split(nil, validUTF8(corpus), func(dst []int32, s string) []int32 {
		s = nfc(s)
		for i := 0; i < len(s); {
			j := pieceEnd(s, i)
			freq[s[i:j]]++
			i = j
		}
		return dst
	})
	pieces := make([]string, 0, len(freq))
	for p := range freq {
		pieces = append(pieces, p)
	}
	slices.Sort(pieces)
	for _, p := range pieces {
		w := make([]int32, len(p))
		for i := 0; i < len(p); i++ {
			w[i] = int32(p[i])
		}
		words, counts = append(words, w), append(counts, freq[p])
	}
	return words, counts
}

// bestPair returns the most frequent adjacent pair, if one occurs at least twice.
func bestPair(words [][]int32, counts []int) (left, right int32, ok bool) {
	pairs := map[uint64]int{}
	for i, w := range words {
		for j := 0; j+1 < len(w); j++ {
			pairs[pairKey(w[j], w[j+1])] += counts[i]
		}
	}
	var best uint64
	bestCount := 1
	for k, c := range pairs {
		if c > bestCount || c == bestCount && bestCount > 1 && k < best {
			best, bestCount = k, c
		}
	}
	if bestCount < 2 {
		return 0, 0, false
	}
	return int32(best >> 32), int32(uint32(best)), true
}

// mergePair replaces each left-right pair in w by id, left to right.
func mergePair(w []int32, left, right, id int32) []int32 {
	out := w[:0]
	for i := 0; i < len(w); i++ {
		if i+1 < len(w) && w[i] == left && w[i+1] == right {
			out = append(out, id)
			i++
			continue
		}
		out = append(out, w[i])
	}
	return out
}

func identity(s string) string { return s }

// tokenizerJSON mirrors the layout of Qwen2.5's tokenizer.json, field order included.
type tokenizerJSON struct {
	Version       string         `json:"version"`
	Truncation    *struct{}      `json:"truncation"`
	Padding       *struct{}      `json:"padding"`
	AddedTokens   []addedJSON    `json:"added_tokens"`
	Normalizer    map[string]any `json:"normalizer"`
	PreTokenizer  map[string]any `json:"pre_tokenizer"`
	PostProcessor map[string]any `json:"post_processor"`
	Decoder       map[string]any `json:"decoder"`
	Model         bpeModelJSON   `json:"model"`
}

type bpeModelJSON struct {
	Type                    string       `json:"type"`
	Dropout                 *float64     `json:"dropout"`
	UnkToken                *string      `json:"unk_token"`
	ContinuingSubwordPrefix string       `json:"continuing_subword_prefix"`
	EndOfWordSuffix         string       `json:"end_of_word_suffix"`
	FuseUnk                 bool         `json:"fuse_unk"`
	ByteFallback            bool         `json:"byte_fallback"`
	IgnoreMerges            bool         `json:"ignore_merges"`
	Vocab                   orderedVocab `json:"vocab"`
	Merges                  [][2]string  `json:"merges"`
}

// orderedVocab marshals as a JSON object whose keys are in id order (a map would sort them).
type orderedVocab []string

func (v orderedVocab) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for id, tok := range v {
		if id > 0 {
			b.WriteByte(',')
		}
		key, err := marshalNoEscape(tok)
		if err != nil {
			return nil, err
		}
		fmt.Fprintf(&b, "%s:%d", key, id)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

func marshalTokenizer(tokens []string, merges [][2]string, markers []string) ([]byte, error) {
	byteLevel := map[string]any{"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": false}
	tj := tokenizerJSON{
		Version:    "1.0",
		Normalizer: map[string]any{"type": "NFC"},
		PreTokenizer: map[string]any{"type": "Sequence", "pretokenizers": []any{
			map[string]any{"type": "Split", "pattern": map[string]string{"Regex": qwenPattern}, "behavior": "Isolated", "invert": false},
			byteLevel,
		}},
		PostProcessor: byteLevel,
		Decoder:       byteLevel,
		Model:         bpeModelJSON{Type: "BPE", Vocab: tokens, Merges: append([][2]string{}, merges...)},
	}
	no := false
	for i, c := range slices.Concat(tinySpecial, markers) {
		tj.AddedTokens = append(tj.AddedTokens, addedJSON{
			ID: int64(len(tokens) + i), Content: c, Normalized: &no, Special: i < len(tinySpecial),
		})
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(tj); err != nil {
		return nil, fmt.Errorf("marshal tiny tokenizer: %w", err)
	}
	return b.Bytes(), nil
}

// tinyChatTemplate is ChatML without tools, as a Jinja template for Hugging Face's
// apply_chat_template.
var tinyChatTemplate = strings.Join([]string{
	"{%- if not messages or messages[0]['role'] != 'system' %}",
	"{{- '<|im_start|>system\\n" + DefaultSystemPrompt + "<|im_end|>\\n' }}",
	"{%- endif %}",
	"{%- for message in messages %}",
	"{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}",
	"{%- endfor %}",
	"{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}",
}, "")

func tinyConfigJSON() []byte {
	b, err := marshalNoEscape(map[string]any{
		"tokenizer_class":              "PreTrainedTokenizerFast",
		"eos_token":                    "<|im_end|>",
		"pad_token":                    "<|endoftext|>",
		"additional_special_tokens":    tinySpecial,
		"clean_up_tokenization_spaces": false,
		"model_max_length":             4096,
		"chat_template":                tinyChatTemplate,
	})
	if err != nil {
		panic(err) // a fixed map of strings always marshals
	}
	return append(b, '\n')
}
