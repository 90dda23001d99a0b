package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"unicode/utf8"
)

// FileName is the name Load looks for when given a model directory.
const FileName = "tokenizer.json"

// Load reads a Hugging Face tokenizer.json, given its path or the model directory holding it.
func Load(path string) (*BPE, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	if fi.IsDir() {
		path = filepath.Join(path, FileName)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("load tokenizer %s: %w", path, err)
	}
	return t, nil
}

// fileJSON is the part of tokenizer.json's schema that matters for encoding and decoding.
type fileJSON struct {
	Truncation    json.RawMessage `json:"truncation"`
	Padding       json.RawMessage `json:"padding"`
	AddedTokens   []addedJSON     `json:"added_tokens"`
	Normalizer    json.RawMessage `json:"normalizer"`
	PreTokenizer  json.RawMessage `json:"pre_tokenizer"`
	PostProcessor json.RawMessage `json:"post_processor"`
	Decoder       json.RawMessage `json:"decoder"`
	Model         modelJSON       `json:"model"`
}

type modelJSON struct {
	Type                    string          `json:"type"`
	Dropout                 *float64        `json:"dropout"`
	ContinuingSubwordPrefix string          `json:"continuing_subword_prefix"`
	EndOfWordSuffix         string          `json:"end_of_word_suffix"`
	IgnoreMerges            bool            `json:"ignore_merges"`
	Vocab                   json.RawMessage `json:"vocab"`
	Merges                  json.RawMessage `json:"merges"`
	// unk_token, fuse_unk and byte_fallback are accepted and ignored: they act only on characters
	// missing from the vocabulary, and Parse insists that all 256 byte symbols are present.
}

type addedJSON struct {
	ID         int64  `json:"id"`
	Content    string `json:"content"`
	SingleWord bool   `json:"single_word"`
	Lstrip     bool   `json:"lstrip"`
	Rstrip     bool   `json:"rstrip"`
	Normalized *bool  `json:"normalized"`
	Special    bool   `json:"special"`
}

// component is a normalizer, pre-tokenizer, post-processor or decoder object; only the fields
// this package looks at are named.
type component struct {
	Type           string            `json:"type"`
	Normalizers    []json.RawMessage `json:"normalizers"`
	Pretokenizers  []json.RawMessage `json:"pretokenizers"`
	Pattern        map[string]string `json:"pattern"`
	Behavior       string            `json:"behavior"`
	Invert         bool              `json:"invert"`
	AddPrefixSpace bool              `json:"add_prefix_space"`
	UseRegex       *bool             `json:"use_regex"`
}

// Parse builds a tokenizer from the contents of a tokenizer.json.
func Parse(data []byte) (*BPE, error) {
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: not UTF-8", ErrBadTokenizer)
	}
	rest, vocab, merges, err := splitDocument(data)
	if err != nil {
		return nil, err
	}
	var f fileJSON
	if err := json.Unmarshal(rest, &f); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadTokenizer, err)
	}
	f.Model.Vocab, f.Model.Merges = vocab, merges
	if err := f.check(); err != nil {
		return nil, err
	}
	nfcOn, err := normalizerIsNFC(f.Normalizer)
	if err != nil {
		return nil, err
	}
	t := &BPE{nfc: nfcOn, ignoreMerges: f.Model.IgnoreMerges, cache: newWordCache()}
	if err := t.readVocab(f.Model.Vocab); err != nil {
		return nil, err
	}
	if err := t.readAdded(f.AddedTokens); err != nil {
		return nil, err
	}
	if err := t.readMerges(f.Model.Merges); err != nil {
		return nil, err
	}
	if err := t.buildBytes(); err != nil {
		return nil, err
	}
	return t, nil
}

// check rejects every setting that would make encoding differ from what this package does.
func (f *fileJSON) check() error {
	switch {
	case !isNull(f.Truncation):
		return fmt.Errorf("%w: truncation", ErrUnsupported)
	case !isNull(f.Padding):
		return fmt.Errorf("%w: padding", ErrUnsupported)
	case f.Model.Type != "BPE" && f.Model.Type != "":
		return fmt.Errorf("%w: model type %q (only BPE)", ErrUnsupported, f.Model.Type)
	case f.Model.Dropout != nil && *f.Model.Dropout != 0:
		return fmt.Errorf("%w: BPE dropout %v", ErrUnsupported, *f.Model.Dropout)
	case f.Model.ContinuingSubwordPrefix != "":
		return fmt.Errorf("%w: BPE continuing_subword_prefix", ErrUnsupported)
	case f.Model.EndOfWordSuffix != "":
		return fmt.Errorf("%w: BPE end_of_word_suffix", ErrUnsupported)
	case isNull(f.Model.Vocab) || isNull(f.Model.Merges):
		return fmt.Errorf("%w: model has no vocab or no merges", ErrBadTokenizer)
	}
	if err := checkPreTokenizer(f.PreTokenizer); err != nil {
		return err
	}
	if err := checkByteLevel("post_processor", f.PostProcessor, true); err != nil {
		return err
	}
	return checkByteLevel("decoder", f.Decoder, false)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

func parseComponent(what string, raw json.RawMessage) (component, error) {
	var c component
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("%w: %s: %v", ErrBadTokenizer, what, err)
	}
	return c, nil
}

// normalizerIsNFC accepts no normalizer, NFC, or a Sequence of those.
func normalizerIsNFC(raw json.RawMessage) (bool, error) {
	if isNull(raw) {
		return false, nil
	}
	c, err := parseComponent("normalizer", raw)
	if err != nil {
		return false, err
	}
	switch c.Type {
	case "NFC":
		return true, nil
	case "Sequence":
		on := false
		for _, sub := range c.Normalizers {
			subOn, err := normalizerIsNFC(sub)
			if err != nil {
				return false, err
			}
			on = on || subOn
		}
		return on, nil
	}
	return false, fmt.Errorf("%w: normalizer %q (only NFC)", ErrUnsupported, c.Type)
}

// checkPreTokenizer accepts Qwen's: Sequence[Split(qwenPattern, Isolated), ByteLevel(no regex)].
func checkPreTokenizer(raw json.RawMessage) error {
	if isNull(raw) {
		return fmt.Errorf("%w: no pre_tokenizer (want Split with Qwen's pattern, then ByteLevel)", ErrUnsupported)
	}
	c, err := parseComponent("pre_tokenizer", raw)
	if err != nil {
		return err
	}
	if c.Type != "Sequence" || len(c.Pretokenizers) != 2 {
		return fmt.Errorf("%w: pre_tokenizer %q (want a Sequence of Split with Qwen's pattern and ByteLevel)", ErrUnsupported, c.Type)
	}
	split, err := parseComponent("pre_tokenizer", c.Pretokenizers[0])
	if err != nil {
		return err
	}
	switch {
	case split.Type != "Split":
		return fmt.Errorf("%w: pre_tokenizer %q before ByteLevel (only Split)", ErrUnsupported, split.Type)
	case split.Pattern["Regex"] != qwenPattern:
		return fmt.Errorf("%w: Split pattern %v (only Qwen2's regex)", ErrUnsupported, split.Pattern)
	case split.Behavior != "Isolated" || split.Invert:
		return fmt.Errorf("%w: Split behavior %q invert=%v (only Isolated)", ErrUnsupported, split.Behavior, split.Invert)
	}
	bl, err := parseComponent("pre_tokenizer", c.Pretokenizers[1])
	if err != nil {
		return err
	}
	switch {
	case bl.Type != "ByteLevel":
		return fmt.Errorf("%w: pre_tokenizer %q after Split (only ByteLevel)", ErrUnsupported, bl.Type)
	case bl.AddPrefixSpace:
		return fmt.Errorf("%w: ByteLevel add_prefix_space", ErrUnsupported)
	case bl.UseRegex == nil || *bl.UseRegex:
		return fmt.Errorf("%w: ByteLevel use_regex (the GPT-2 pattern)", ErrUnsupported)
	}
	return nil
}

// checkByteLevel accepts a ByteLevel post-processor or decoder (and no post-processor: ByteLevel's
// only changes offsets, which this package does not report).
func checkByteLevel(what string, raw json.RawMessage, nullOK bool) error {
	if isNull(raw) {
		if nullOK {
			return nil
		}
		return fmt.Errorf("%w: no %s (only ByteLevel)", ErrUnsupported, what)
	}
	c, err := parseComponent(what, raw)
	if err != nil {
		return err
	}
	if c.Type != "ByteLevel" {
		return fmt.Errorf("%w: %s %q (only ByteLevel)", ErrUnsupported, what, c.Type)
	}
	return nil
}

// maxID bounds token ids so that a typo in a file cannot make Parse allocate gigabytes.
const maxID = 1 << 21 // 2M ids; the largest real vocabularies have about 260k

// readVocab fills tokens and vocab from the model's vocabulary.
func (t *BPE) readVocab(raw json.RawMessage) error {
	t.vocab = make(map[string]int32, 160_000)
	t.tokens = make([]string, 0, 160_000)
	return forEachVocab(raw, func(tok string, id int64) error {
		if id < 0 || id >= maxID {
			return fmt.Errorf("%w: token %q has id %d, outside [0, %d)", ErrBadTokenizer, tok, id, maxID)
		}
		if err := t.setToken(int32(id), tok); err != nil {
			return err
		}
		n := len(t.vocab)
		t.vocab[tok] = int32(id) // one map access, not a lookup then an insert
		if len(t.vocab) == n {
			return fmt.Errorf("%w: token %q appears twice in the vocabulary", ErrBadTokenizer, tok)
		}
		return nil
	})
}

// setToken records tok as the spelling of id, which must be free or already tok.
func (t *BPE) setToken(id int32, tok string) error {
	if tok == "" {
		return fmt.Errorf("%w: empty token with id %d", ErrBadTokenizer, id)
	}
	for int(id) >= len(t.tokens) {
		t.tokens = append(t.tokens, "")
	}
	if old := t.tokens[id]; old != "" && old != tok {
		return fmt.Errorf("%w: id %d is both %q and %q", ErrBadTokenizer, id, old, tok)
	}
	t.tokens[id] = tok
	return nil
}

// readAdded records the added tokens and builds their matchers.
func (t *BPE) readAdded(list []addedJSON) error {
	t.added = make(map[int32]*addedToken, len(list))
	var raw, normalized []*addedToken
	for _, a := range list {
		if a.ID < 0 || a.ID >= maxID {
			return fmt.Errorf("%w: added token %q has id %d, outside [0, %d)", ErrBadTokenizer, a.Content, a.ID, maxID)
		}
		if id, ok := t.vocab[a.Content]; ok && int64(id) != a.ID {
			return fmt.Errorf("%w: added token %q has id %d but %d in the vocabulary", ErrBadTokenizer, a.Content, a.ID, id)
		}
		if _, dup := t.added[int32(a.ID)]; dup {
			return fmt.Errorf("%w: added token id %d appears twice", ErrBadTokenizer, a.ID)
		}
		if err := t.setToken(int32(a.ID), a.Content); err != nil {
			return err
		}
		tok := &addedToken{
			id: int32(a.ID), content: a.Content, special: a.Special,
			singleWord: a.SingleWord, lstrip: a.Lstrip, rstrip: a.Rstrip,
		}
		t.added[tok.id] = tok
		matchNormalized := !a.Special // Hugging Face's default when the field is absent
		if a.Normalized != nil {
			matchNormalized = *a.Normalized
		}
		if matchNormalized {
			normalized = append(normalized, tok)
		} else {
			raw = append(raw, tok)
		}
	}
	t.addedByContent = make(map[string]int32, len(list))
	for id, tok := range t.added {
		if _, dup := t.addedByContent[tok.content]; dup {
			return fmt.Errorf("%w: added token %q appears twice", ErrBadTokenizer, tok.content)
		}
		t.addedByContent[tok.content] = id
	}
	t.rawAdded = newAddedMatcher(raw, identity)
	t.normAdded = newAddedMatcher(normalized, t.normalize)
	return nil
}

// readMerges resolves each merge to ids; its index in the list is its rank (lower merges first).
func (t *BPE) readMerges(raw json.RawMessage) error {
	t.merges = make(map[uint64]uint64, 160_000)
	rank := uint64(0)
	var ab []byte
	return forEachMerge(raw, func(a, b []byte) error {
		ab = append(append(ab[:0], a...), b...)
		left, okA := t.vocab[string(a)] // string(x) in a map index does not allocate
		right, okB := t.vocab[string(b)]
		merged, okAB := t.mergedID(rank, ab)
		if !okA || !okB || !okAB {
			return fmt.Errorf("%w: merge %d (%q, %q) uses or makes a token that is not in the vocabulary", ErrBadTokenizer, rank, a, b)
		}
		// A pair listed twice keeps its last rank, as Hugging Face's map building does.
		t.merges[pairKey(left, right)] = rank<<32 | uint64(uint32(merged))
		rank++
		return nil
	})
}

// mergedID finds the id of the token a merge makes. Vocabularies built by BPE training (Qwen's
// and the tiny one) give the merge of rank r the id 256+r, which is checked first: a map lookup
// per merge is a third of the load time.
func (t *BPE) mergedID(rank uint64, tok []byte) (int32, bool) {
	if id := 256 + rank; id < uint64(len(t.tokens)) && t.tokens[id] == string(tok) {
		return int32(id), true
	}
	id, ok := t.vocab[string(tok)]
	return id, ok
}

// buildBytes derives the byte-level tables: the id of each single byte, which BPE starts from,
// and the bytes each id decodes to.
func (t *BPE) buildBytes() error {
	for b := range 256 {
		id, ok := t.vocab[byteChars[b]]
		if !ok {
			return fmt.Errorf("%w: vocabulary lacks the byte-level symbol %q for byte 0x%02x", ErrUnsupported, byteChars[b], b)
		}
		t.byteID[b] = id
	}
	t.decOff = make([]uint32, len(t.tokens)+1)
	t.dec = make([]byte, 0, 8*len(t.tokens))
	for id, tok := range t.tokens {
		var ok bool
		if t.dec, ok = appendFromByteLevel(t.dec, tok); !ok {
			t.dec = append(t.dec, tok...) // as Hugging Face's ByteLevel decoder: kept verbatim
		}
		t.decOff[id+1] = uint32(len(t.dec))
	}
	return nil
}
