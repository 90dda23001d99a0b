package tokenizer

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestEncodeJSONL(t *testing.T) {
	tok := qwen(t)
	in := `{"text": "Hello world"}
{"name": "extra fields are ignored", "text": "<|im_end|>"}
{"text": ""}`
	want := `{"ids":[9707,1879]}
{"ids":[151645]}
{"ids":[]}
`
	var out bytes.Buffer
	if err := tok.EncodeJSONL(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("EncodeJSONL wrote\n%s\nwant\n%s", out.String(), want)
	}
}

// TestEncodeJSONLBatches crosses the batch size to check the order is kept.
func TestEncodeJSONLBatches(t *testing.T) {
	tok := qwen(t)
	cases := readFixture(t, qwenDir+"/fuzz.jsonl")[:jsonlBatch+100]
	var in, want bytes.Buffer
	for _, c := range cases {
		rec, err := marshalNoEscape(map[string]string{"text": c.Text})
		if err != nil {
			t.Fatal(err)
		}
		in.Write(append(rec, '\n'))
		want.Write(appendIDsJSON(nil, c.IDs))
	}
	var out bytes.Buffer
	if err := tok.EncodeJSONL(&in, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want.String() {
		t.Errorf("EncodeJSONL output differs from the fixture ids")
	}
}

func TestDecodeJSONL(t *testing.T) {
	tok := qwen(t)
	in := "{\"ids\": [9707, 1879]}\r\n{\"ids\": [151644, 872, 198]}\n"
	want := "{\"text\":\"Hello world\"}\n{\"text\":\"<|im_start|>user\\n\"}\n"
	var out bytes.Buffer
	if err := tok.DecodeJSONL(strings.NewReader(in), &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != want {
		t.Errorf("DecodeJSONL wrote %q, want %q", out.String(), want)
	}
}

func TestJSONLRejects(t *testing.T) {
	tok := qwen(t)
	tests := []struct {
		name    string
		decode  bool
		in      string
		wantMsg string
	}{
		{"not JSON", false, "hello\n", "line 1"},
		{"no text", false, `{"text": "a"}` + "\n" + `{"txt": "a"}`, `line 2: no "text"`},
		{"text not a string", false, `{"text": 5}`, "line 1"},
		{"blank line", false, `{"text": "a"}` + "\n\n" + `{"text": "b"}`, "line 2 is blank"},
		{"no ids", true, `{"text": "a"}`, `no "ids"`},
		{"ids not integers", true, `{"ids": [1.5]}`, "line 1"},
		{"id out of int32", true, `{"ids": [4294967296]}`, "line 1"},
		{"unknown id", true, `{"ids": [151665]}`, "id 151665"},
		{"negative id", true, `{"ids": [-1]}`, "id -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			run := tok.EncodeJSONL
			if tt.decode {
				run = tok.DecodeJSONL
			}
			err := run(strings.NewReader(tt.in), &bytes.Buffer{})
			if !errors.Is(err, ErrBadInput) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want ErrBadInput mentioning %q", err, tt.wantMsg)
			}
		})
	}
}
