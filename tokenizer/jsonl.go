package tokenizer

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// jsonlBatch is how many lines EncodeJSONL encodes at once (in parallel) before writing them.
const jsonlBatch = 1024

// EncodeJSONL reads one {"text": "..."} record per line from r and writes {"ids": [...]} per
// line to w, in the same order. Other fields are ignored; a line without "text" is an error.
func (t *BPE) EncodeJSONL(r io.Reader, w io.Writer) error {
	bw := bufio.NewWriter(w)
	var texts []string
	flush := func() error {
		var line []byte
		for _, ids := range t.EncodeBatch(texts) {
			line = appendIDsJSON(line[:0], ids)
			if _, err := bw.Write(line); err != nil {
				return err
			}
		}
		texts = texts[:0]
		return nil
	}
	err := forEachLine(r, func(n int, line []byte) error {
		var rec struct {
			Text *string `json:"text"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrBadInput, n, err)
		}
		if rec.Text == nil {
			return fmt.Errorf("%w: line %d: no \"text\" field", ErrBadInput, n)
		}
		texts = append(texts, *rec.Text)
		if len(texts) == jsonlBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// DecodeJSONL reads one {"ids": [...]} record per line from r and writes {"text": "..."} per
// line to w. Unlike Decode, it rejects ids that are not in the vocabulary.
func (t *BPE) DecodeJSONL(r io.Reader, w io.Writer) error {
	bw := bufio.NewWriter(w)
	err := forEachLine(r, func(n int, line []byte) error {
		var rec struct {
			IDs *[]int32 `json:"ids"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrBadInput, n, err)
		}
		if rec.IDs == nil {
			return fmt.Errorf("%w: line %d: no \"ids\" field", ErrBadInput, n)
		}
		for _, id := range *rec.IDs {
			if t.Token(id) == "" {
				return fmt.Errorf("%w: line %d: id %d is not in the vocabulary", ErrBadInput, n, id)
			}
		}
		out, err := marshalNoEscape(struct {
			Text string `json:"text"`
		}{t.Decode(*rec.IDs)})
		if err != nil {
			return err
		}
		_, err = bw.Write(append(out, '\n'))
		return err
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	return err
}

// forEachLine calls fn with each line of r (numbered from 1, without its newline); a final line
// without a newline counts, a blank line is an error.
func forEachLine(r io.Reader, fn func(n int, line []byte) error) error {
	br := bufio.NewReaderSize(r, 1<<16)
	for n := 1; ; n++ {
		line, err := br.ReadBytes('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", n, err)
		}
		if len(line) == 0 && err != nil {
			return nil
		}
		if len(bytes.TrimSpace(line)) == 0 {
			return fmt.Errorf("%w: line %d is blank", ErrBadInput, n)
		}
		if ferr := fn(n, line); ferr != nil {
			return ferr
		}
		if err != nil {
			return nil
		}
	}
}

func appendIDsJSON(b []byte, ids []int32) []byte {
	b = append(b, `{"ids":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendInt(b, int64(id), 10)
	}
	return append(b, "]}\n"...)
}
