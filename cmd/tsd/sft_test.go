package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSFTLogEvery: --log-every 0 trains without printing the loss (it divided by zero once), a
// positive one prints every so many steps, and a negative one is refused before any work.
func TestSFTLogEvery(t *testing.T) {
	dir := t.TempDir()
	model := filepath.Join(dir, "tiny")
	if _, err := runTSD(t, "", "init-model", "--preset", "tiny", "--out", model); err != nil {
		t.Fatal(err)
	}
	sft := func(every string) (string, string, error) {
		out := filepath.Join(dir, "sft-"+every)
		root := newRootCmd()
		var stdout, stderr bytes.Buffer
		root.SetOut(&stdout)
		root.SetErr(&stderr)
		root.SetArgs([]string{"sft", "--model", model, "--out", out, "--steps", "2", "--batch", "2",
			"--gen-count", "20", "--threads", "1", "--log-every", every})
		err := root.Execute()
		return out, stderr.String(), err
	}
	out, log, err := sft("0")
	if err != nil {
		t.Fatalf("--log-every 0: %v", err)
	}
	if strings.Contains(log, "loss") {
		t.Errorf("--log-every 0 printed the loss:\n%s", log)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Errorf("--log-every 0 wrote no model: %v", err)
	}
	if _, log, err = sft("1"); err != nil || strings.Count(log, "loss") != 2 {
		t.Errorf("--log-every 1: %v, log:\n%s", err, log)
	}
	out, _, err = sft("-1")
	if err == nil || !strings.Contains(err.Error(), "--log-every") {
		t.Errorf("--log-every -1: %v", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused sft left %s: %v", out, err)
	}
}
