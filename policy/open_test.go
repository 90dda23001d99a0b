package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"

	"tsd/model"
	"tsd/tensor"
	"tsd/tokenizer"
)

// writeTiny writes a tiny random model with its tokenizer to a new directory.
func writeTiny(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	err = tensor.OnWorker(func() error {
		cfg, err := model.Preset("tiny", tok.VocabSize())
		if err != nil {
			return err
		}
		cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 64, 160, 2
		m, err := model.Init(cfg, 3, model.Options{Device: gotch.CPU})
		if err != nil {
			return err
		}
		defer m.Close()
		return m.Save(dir, gotch.Float)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestOpen: a model directory opens on a worker of its own (stopped by Close) or on the caller's
// (left running), with the version and tokenizer asked for.
func TestOpen(t *testing.T) {
	dir := writeTiny(t)
	p, err := Open(context.Background(), dir, Options{Model: model.Options{Device: gotch.CPU}, Version: 4})
	if err != nil {
		t.Fatal(err)
	}
	if p.Version() != 4 || p.Tokenizer() == nil {
		t.Fatalf("version %d, tokenizer %v", p.Version(), p.Tokenizer())
	}
	own := p.w
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := own.Do(context.Background(), func() error { return nil }); !errors.Is(err, tensor.ErrWorkerClosed) {
		t.Fatalf("Open's own worker after Close: %v, want ErrWorkerClosed", err)
	}

	w := tensor.NewWorker()
	defer w.Close()
	p, err = Open(context.Background(), dir, Options{Model: model.Options{Device: gotch.CPU}, Worker: w})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Do(context.Background(), func() error { return nil }); err != nil {
		t.Fatalf("the caller's worker after Close: %v", err)
	}
}

// TestOpenDamaged: a truncated weights file or a missing tokenizer is a clear error, and the
// caller's worker still runs.
func TestOpenDamaged(t *testing.T) {
	w := tensor.NewWorker()
	defer w.Close()
	dir := writeTiny(t)
	weights := filepath.Join(dir, "model.safetensors")
	info, err := os.Stat(weights)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(weights, info.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, Options{Model: model.Options{Device: gotch.CPU}, Worker: w}); !errors.Is(err, model.ErrCheckpoint) {
		t.Fatalf("truncated weights: %v, want model.ErrCheckpoint", err)
	}
	if err := os.Remove(filepath.Join(dir, tokenizer.FileName)); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), dir, Options{Model: model.Options{Device: gotch.CPU}, Worker: w}); err == nil {
		t.Fatal("no tokenizer: want an error")
	}
	if err := w.Do(context.Background(), func() error { return nil }); err != nil {
		t.Fatalf("the caller's worker after failed opens: %v", err)
	}
}
