package main

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"tsd/tokenizer"
)

const qwenDir = "../../tokenizer/testdata/qwen"

func TestTokenizeCmd(t *testing.T) {
	tests := []struct {
		name string
		args []string
		in   string
		want string
	}{
		{"encode", []string{"tokenize", "--tokenizer", qwenDir},
			`{"text": "Hello world"}` + "\n" + `{"text": "<|im_start|>user"}` + "\n",
			`{"ids":[9707,1879]}` + "\n" + `{"ids":[151644,872]}` + "\n"},
		{"decode", []string{"tokenize", "--tokenizer", filepath.Join(qwenDir, "tokenizer.json"), "--decode"},
			`{"ids": [9707, 1879]}`, `{"text":"Hello world"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runTSD(t, tt.in, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("output %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenizeCmdFromEnv(t *testing.T) {
	t.Setenv("TSD_TOKENIZER", qwenDir)
	got, err := runTSD(t, `{"text": "Hello world"}`, "tokenize")
	if err != nil || got != `{"ids":[9707,1879]}`+"\n" {
		t.Errorf("got %q, %v", got, err)
	}
}

func TestTokenizeCmdErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		in      string
		wantErr error
		wantMsg string
	}{
		{"no tokenizer flag", []string{"tokenize"}, "", nil, "tokenizer"},
		{"missing tokenizer", []string{"tokenize", "--tokenizer", "/nonexistent"}, "", nil, "/nonexistent"},
		{"bad line", []string{"tokenize", "--tokenizer", qwenDir}, "{bad\n", tokenizer.ErrBadInput, "line 1"},
		{"unknown id", []string{"tokenize", "--tokenizer", qwenDir, "--decode"}, `{"ids": [200000]}`, tokenizer.ErrBadInput, "200000"},
		{"stray argument", []string{"tokenize", "--tokenizer", qwenDir, "extra"}, "", nil, "extra"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTSD(t, tt.in, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.wantMsg) || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.wantMsg)
			}
		})
	}
}

func TestInitTokenizerCmd(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tiny")
	got, err := runTSD(t, "", "init-tokenizer", "--out", dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "wrote "+filepath.Join(dir, "tokenizer.json")) {
		t.Errorf("output %q", got)
	}
	out, err := runTSD(t, `{"text": "<step>12 + 3 = 15</step>"}`, "tokenize", "--tokenizer", dir)
	if err != nil {
		t.Fatal(err)
	}
	back, err := runTSD(t, out, "tokenize", "--tokenizer", dir, "--decode")
	if err != nil || back != `{"text":"<step>12 + 3 = 15</step>"}`+"\n" {
		t.Errorf("round trip through the tiny tokenizer gave %q, %v", back, err)
	}

	corpus := filepath.Join(t.TempDir(), "corpus.txt")
	if _, err := runTSD(t, "", "init-tokenizer", "--out", dir, "--corpus", corpus); err == nil {
		t.Errorf("a missing corpus file was accepted")
	}
	if _, err := runTSD(t, "", "init-tokenizer", "--out", dir, "--merges", "5000"); !errors.Is(err, tokenizer.ErrBadTinyConfig) {
		t.Errorf("--merges 5000: err = %v, want ErrBadTinyConfig", err)
	}
	if _, err := runTSD(t, "", "init-tokenizer"); err == nil {
		t.Errorf("init-tokenizer without --out succeeded")
	}
}
