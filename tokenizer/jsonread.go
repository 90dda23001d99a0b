package tokenizer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// jsonReader reads the two large values of a tokenizer.json (the vocabulary object and the merges
// array, 150k entries each) without building generic values: encoding/json alone takes about a
// third of a second for them, which would blow the load budget on its own.
type jsonReader struct {
	b []byte
	i int
}

func (r *jsonReader) errorf(format string, args ...any) error {
	return fmt.Errorf("%w: byte %d: %s", ErrBadTokenizer, r.i, fmt.Sprintf(format, args...))
}

func (r *jsonReader) skipSpace() {
	for r.i < len(r.b) {
		switch r.b[r.i] {
		case ' ', '\t', '\n', '\r':
			r.i++
		default:
			return
		}
	}
}

// consume skips white space and then c if it comes next, reporting whether it did.
func (r *jsonReader) consume(c byte) bool {
	r.skipSpace()
	if r.i < len(r.b) && r.b[r.i] == c {
		r.i++
		return true
	}
	return false
}

func (r *jsonReader) expect(c byte) error {
	if !r.consume(c) {
		return r.errorf("want %q", c)
	}
	return nil
}

// end checks that nothing but white space is left.
func (r *jsonReader) end() error {
	r.skipSpace()
	if r.i != len(r.b) {
		return r.errorf("unexpected data after the value")
	}
	return nil
}

// object calls member for each key of a JSON object; member must read the value.
func (r *jsonReader) object(member func(key string) error) error {
	if err := r.expect('{'); err != nil {
		return err
	}
	if r.consume('}') {
		return nil
	}
	for {
		key, err := r.str()
		if err != nil {
			return err
		}
		if err := r.expect(':'); err != nil {
			return err
		}
		if err := member(key); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		return r.expect('}')
	}
}

// array calls elem for each element of a JSON array; elem must read the element.
func (r *jsonReader) array(elem func() error) error {
	if err := r.expect('['); err != nil {
		return err
	}
	if r.consume(']') {
		return nil
	}
	for {
		if err := elem(); err != nil {
			return err
		}
		if r.consume(',') {
			continue
		}
		return r.expect(']')
	}
}

// integer reads a JSON number that must be an integer.
func (r *jsonReader) integer() (int64, error) {
	r.skipSpace()
	start := r.i
	if r.i < len(r.b) && r.b[r.i] == '-' {
		r.i++
	}
	digits := r.i
	for r.i < len(r.b) && '0' <= r.b[r.i] && r.b[r.i] <= '9' {
		r.i++
	}
	switch {
	case r.i == digits:
		return 0, r.errorf("want an integer")
	case r.b[digits] == '0' && r.i-digits > 1:
		return 0, r.errorf("leading zero in a number")
	case r.i < len(r.b) && (r.b[r.i] == '.' || r.b[r.i] == 'e' || r.b[r.i] == 'E'):
		return 0, r.errorf("want an integer, not a fraction or exponent")
	}
	n, err := strconv.ParseInt(string(r.b[start:r.i]), 10, 64)
	if err != nil {
		return 0, r.errorf("%v", err)
	}
	return n, nil
}

// str reads a JSON string. Lone UTF-16 surrogates become U+FFFD, as encoding/json does.
func (r *jsonReader) str() (string, error) {
	b, err := r.strBytes()
	return string(b), err
}

// strBytes is str without the copy: a string without escapes is returned as a slice of the input.
func (r *jsonReader) strBytes() ([]byte, error) {
	if err := r.expect('"'); err != nil {
		return nil, err
	}
	start := r.i
	for r.i < len(r.b) {
		switch c := r.b[r.i]; {
		case c == '"':
			r.i++
			return r.b[start : r.i-1], nil
		case c == '\\':
			return r.escapedStr(start)
		case c < 0x20:
			return nil, r.errorf("control character in a string")
		}
		r.i++
	}
	return nil, r.errorf("unterminated string")
}

// escapedStr finishes a string that has escapes; the plain bytes since start are kept.
func (r *jsonReader) escapedStr(start int) ([]byte, error) {
	out := append([]byte(nil), r.b[start:r.i]...)
	for r.i < len(r.b) {
		c := r.b[r.i]
		switch {
		case c == '"':
			r.i++
			return out, nil
		case c < 0x20:
			return nil, r.errorf("control character in a string")
		case c != '\\':
			out = append(out, c)
			r.i++
			continue
		}
		if r.i+1 >= len(r.b) {
			break
		}
		esc := r.b[r.i+1]
		r.i += 2
		switch esc {
		case '"', '\\', '/':
			out = append(out, esc)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			u, err := r.unicodeEscape()
			if err != nil {
				return nil, err
			}
			out = utf8.AppendRune(out, u)
		default:
			return nil, r.errorf("bad escape \\%c", esc)
		}
	}
	return nil, r.errorf("unterminated string")
}

// unicodeEscape reads the hex digits after \u, joining a surrogate pair.
func (r *jsonReader) unicodeEscape() (rune, error) {
	u, ok := r.hex4()
	if !ok {
		return 0, r.errorf("bad \\u escape")
	}
	if !utf16.IsSurrogate(u) {
		return u, nil
	}
	if r.i+1 < len(r.b) && r.b[r.i] == '\\' && r.b[r.i+1] == 'u' {
		save := r.i
		r.i += 2
		if u2, ok := r.hex4(); ok {
			if pair := utf16.DecodeRune(u, u2); pair != utf8.RuneError {
				return pair, nil
			}
		}
		r.i = save
	}
	return utf8.RuneError, nil
}

func (r *jsonReader) hex4() (rune, bool) {
	if r.i+4 > len(r.b) {
		return 0, false
	}
	var u rune
	for _, c := range r.b[r.i : r.i+4] {
		switch {
		case '0' <= c && c <= '9':
			u = u<<4 | rune(c-'0')
		case 'a' <= c && c <= 'f':
			u = u<<4 | rune(c-'a'+10)
		case 'A' <= c && c <= 'F':
			u = u<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	r.i += 4
	return u, true
}

// forEachVocab calls fn for each token and id of a BPE model's "vocab" object.
func forEachVocab(raw []byte, fn func(tok string, id int64) error) error {
	r := &jsonReader{b: raw}
	err := r.object(func(tok string) error {
		id, err := r.integer()
		if err != nil {
			return err
		}
		return fn(tok, id)
	})
	if err != nil {
		return err
	}
	return r.end()
}

// forEachMerge calls fn for each pair of a BPE model's "merges" array, which comes in two
// formats: ["a b", ...] (older files) and [["a", "b"], ...] (newer ones, which allow spaces).
// a and b may alias the input and are valid only during the call.
func forEachMerge(raw []byte, fn func(a, b []byte) error) error {
	r := &jsonReader{b: raw}
	err := r.array(func() error {
		r.skipSpace()
		if r.i < len(r.b) && r.b[r.i] == '"' {
			return r.legacyMerge(fn)
		}
		var pair [][]byte
		err := r.array(func() error {
			s, err := r.strBytes()
			pair = append(pair, s)
			return err
		})
		if err != nil {
			return err
		}
		if len(pair) != 2 {
			return r.errorf("merge %q is not a pair", pair)
		}
		return fn(pair[0], pair[1])
	})
	if err != nil {
		return err
	}
	return r.end()
}

// legacyMerge reads one "a b" merge; like Hugging Face, exactly one space is allowed.
func (r *jsonReader) legacyMerge(fn func(a, b []byte) error) error {
	s, err := r.strBytes()
	if err != nil {
		return err
	}
	sp := bytes.IndexByte(s, ' ')
	if sp < 0 || bytes.IndexByte(s[sp+1:], ' ') >= 0 {
		return r.errorf("merge %q is not two tokens separated by one space", s)
	}
	return fn(s[:sp], s[sp+1:])
}

// maxDepth bounds the nesting skipValue follows, so hostile input cannot exhaust the stack.
const maxDepth = 512

// rawValue skips one JSON value and returns its bytes. Only the structure is checked here; what
// is kept is validated where it is decoded.
func (r *jsonReader) rawValue() ([]byte, error) {
	r.skipSpace()
	start := r.i
	if err := r.skipValue(0); err != nil {
		return nil, err
	}
	return r.b[start:r.i], nil
}

func (r *jsonReader) skipValue(depth int) error {
	if depth > maxDepth {
		return r.errorf("nested deeper than %d", maxDepth)
	}
	r.skipSpace()
	if r.i >= len(r.b) {
		return r.errorf("want a value")
	}
	switch r.b[r.i] {
	case '"':
		return r.skipString()
	case '{':
		r.i++
		if r.consume('}') {
			return nil
		}
		for {
			r.skipSpace()
			if err := r.skipString(); err != nil {
				return err
			}
			if err := r.expect(':'); err != nil {
				return err
			}
			if err := r.skipValue(depth + 1); err != nil {
				return err
			}
			if !r.consume(',') {
				return r.expect('}')
			}
		}
	case '[':
		r.i++
		if r.consume(']') {
			return nil
		}
		for {
			if err := r.skipValue(depth + 1); err != nil {
				return err
			}
			if !r.consume(',') {
				return r.expect(']')
			}
		}
	}
	start := r.i // a number or a literal
	for r.i < len(r.b) && strings.IndexByte("+-.0123456789Eaeflnrstu", r.b[r.i]) >= 0 {
		r.i++
	}
	if r.i == start {
		return r.errorf("want a value")
	}
	return nil
}

func (r *jsonReader) skipString() error {
	if r.i >= len(r.b) || r.b[r.i] != '"' {
		return r.errorf("want a string")
	}
	for r.i++; r.i < len(r.b); r.i++ {
		switch r.b[r.i] {
		case '\\':
			r.i++
		case '"':
			r.i++
			return nil
		}
	}
	return r.errorf("unterminated string")
}

// splitDocument reads a tokenizer.json's top level and returns its model's vocab and merges as
// they are, and everything else as a small JSON document for encoding/json. Handing the whole
// 6 MB file to encoding/json costs more time than the rest of loading.
func splitDocument(data []byte) (rest, vocab, merges []byte, err error) {
	r := &jsonReader{b: data}
	top := map[string]json.RawMessage{}
	model := map[string]json.RawMessage{}
	err = r.object(func(key string) error {
		if key != "model" {
			raw, err := r.rawValue()
			top[key] = raw
			return err
		}
		return r.object(func(mkey string) error {
			raw, err := r.rawValue()
			switch mkey {
			case "vocab":
				vocab = raw
			case "merges":
				merges = raw
			default:
				model[mkey] = raw
			}
			return err
		})
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, nil, nil, err
	}
	if top["model"], err = json.Marshal(model); err == nil {
		rest, err = json.Marshal(top)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%w: %v", ErrBadTokenizer, err)
	}
	return rest, vocab, merges, nil
}
