package main

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const tinyFixture = "../../model/testdata/qwen2-tiny"

func TestLMLogitsAndGenerate(t *testing.T) {
	var golden struct {
		Cases []struct {
			IDs    []int32     `json:"ids"`
			Logits [][]float64 `json:"logits"`
			Greedy []int32     `json:"greedy"`
		} `json:"cases"`
	}
	b, err := os.ReadFile(filepath.Join(tinyFixture, "golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &golden); err != nil {
		t.Fatal(err)
	}
	c := golden.Cases[1]
	in, _ := json.Marshal(map[string]any{"ids": c.IDs})
	out, err := runTSD(t, string(in)+"\n", "lm", "logits", "--model", tinyFixture, "--threads", "1")
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ Logits [][]float64 }
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Logits) != len(c.Logits) {
		t.Fatalf("%d positions, want %d", len(got.Logits), len(c.Logits))
	}
	for p := range c.Logits {
		for v := range c.Logits[p] {
			if math.Abs(got.Logits[p][v]-c.Logits[p][v]) > 1e-4 {
				t.Fatalf("logit [%d][%d] = %v, want %v", p, v, got.Logits[p][v], c.Logits[p][v])
			}
		}
	}
	out, err = runTSD(t, string(in)+"\n", "lm", "generate", "--model", tinyFixture, "--max-new-tokens", "8")
	if err != nil {
		t.Fatal(err)
	}
	var gen struct{ IDs []int32 }
	if err := json.Unmarshal([]byte(out), &gen); err != nil {
		t.Fatal(err)
	}
	if len(gen.IDs) != 8 || !slices.Equal(gen.IDs, c.Greedy) {
		t.Fatalf("greedy %v, want %v", gen.IDs, c.Greedy)
	}
}

func TestInitModelTiny(t *testing.T) {
	dir := t.TempDir()
	if _, err := runTSD(t, "", "init-model", "--preset", "tiny", "--out", dir); err != nil {
		t.Fatal(err)
	}
	out, err := runTSD(t, `{"text": "<|im_start|>user\n1 2 -> 3<|im_end|>\n<|im_start|>assistant\n"}`+"\n",
		"lm", "generate", "--model", dir, "--text", "--max-new-tokens", "5", "--temperature", "1")
	if err != nil {
		t.Fatal(err)
	}
	var gen struct {
		IDs  []int32
		Text string
	}
	if err := json.Unmarshal([]byte(out), &gen); err != nil || len(gen.IDs) == 0 || len(gen.IDs) > 5 {
		t.Fatalf("generate on a fresh tiny model: %q (%v)", out, err)
	}
	if _, err := runTSD(t, "", "init-model", "--preset", "huge", "--out", dir); err == nil || !strings.Contains(err.Error(), "huge") {
		t.Fatalf("unknown preset: %v", err)
	}
	if _, err := runTSD(t, "{\"ids\": [1, 2\n", "lm", "logits", "--model", dir); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("malformed input line: %v", err)
	}
}
