package sft

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/sugarme/gotch"

	"tsd/countdown"
	"tsd/model"
	"tsd/tokenizer"
)

func tiny(t *testing.T) (*model.Qwen2, *tokenizer.BPE) {
	t.Helper()
	dir := t.TempDir()
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	cfg, _ := model.Preset("tiny", tok.VocabSize())
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 64, 160, 2
	m, err := model.Init(cfg, 2, model.Options{Device: gotch.CPU, Trainable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m, tok
}

func TestExamples(t *testing.T) {
	_, tok := tiny(t)
	ps := []countdown.Problem{{Input: []int{3, 4}, Target: 12}, {Input: []int{1, 1}, Target: 50}}
	ex, skipped, err := Examples(tok, countdown.Compact, ps)
	if err != nil {
		t.Fatal(err)
	}
	if len(ex) != 1 || skipped != 1 {
		t.Fatalf("%d examples, %d skipped; want 1 and 1 (50 is unreachable from 1, 1)", len(ex), skipped)
	}
	text := tok.Decode(ex[0].Completion)
	if !strings.HasSuffix(text, tokenizer.IMEnd) || !countdown.Correct(ps[0], text) {
		t.Fatalf("completion %q is not a correct answer ending the turn", text)
	}
	if !strings.HasSuffix(tok.Decode(ex[0].Prompt), "<|im_start|>assistant\n") {
		t.Fatalf("prompt does not end with the generation prompt: %q", tok.Decode(ex[0].Prompt))
	}
}

// TestTrainLowersLoss: a few dozen steps on worked solutions lower the completion NLL.
func TestTrainLowersLoss(t *testing.T) {
	m, tok := tiny(t)
	gc := countdown.EasyGenConfig()
	gc.Count = 64
	ps, err := countdown.Generate(gc, rand.New(rand.NewPCG(1, 2)))
	if err != nil {
		t.Fatal(err)
	}
	ex, _, err := Examples(tok, countdown.Compact, ps)
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.Steps, cfg.Batch = 40, 16
	var first, last float64
	steps, err := Train(context.Background(), m, ex, cfg, func(step int, loss float64, _ time.Duration) {
		if step == 1 {
			first = loss
		}
		last = loss
	})
	if err != nil {
		t.Fatal(err)
	}
	if steps != 40 || !(last < 0.6*first) {
		t.Fatalf("%d steps, loss %.3f → %.3f: want 40 steps and the loss well down", steps, first, last)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{Batch: 0, Steps: 1}, {Batch: 1}, {Batch: 1, Steps: -1}} {
		c.Optim = DefaultConfig().Optim
		if c.Validate() == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
