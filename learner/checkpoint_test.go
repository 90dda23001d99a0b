package learner

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"tsd/model"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/tensor/tensortest"
)

// TestResumeBitIdentical: train k steps, save, take one more step (weights A); resume from the
// checkpoint in a fresh trainer and take the same step (weights B): A == B bit for bit, and so are
// the step's stats, the cursor and the random source. Both an f32 policy and a bf16 one (trained
// through f32 master weights) are checked.
func TestResumeBitIdentical(t *testing.T) {
	tensortest.LockThread(t)
	for _, dt := range []gotch.DType{gotch.Float, gotch.BFloat16} {
		t.Run(dt.String(), func(t *testing.T) {
			tensortest.LockThread(t)
			cfg := testConfig(AlgoMCTS, LossCISPO)
			cfg.Optim.WarmupSteps, cfg.Optim.DecaySteps = 2, 100 // a non-trivial schedule position
			ref := refModel(t, 12)
			tr, err := NewTrainer(initModel(t, 12, dt), ref, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer tr.Close()
			batches := make([][]*tsdv1.Rollout, 4)
			for i := range batches {
				batches[i] = sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_MCTS, 5, 1, uint64(20+i), true)
			}
			for _, b := range batches[:3] {
				step(t, tr, b)
			}
			dir := filepath.Join(t.TempDir(), "ckpt")
			cursor := json.RawMessage(`{"wal_offset":1234}`)
			if err := tr.Save(dir, cursor); err != nil {
				t.Fatal(err)
			}
			wantStats := step(t, tr, batches[3])
			wantW := weightBytes(tr.Policy())
			wantDraw := tr.Rand().Uint64()

			back, gotCursor, err := Resume(dir, ref, cfg, model.Options{Device: gotch.CPU, DType: dt})
			if err != nil {
				t.Fatal(err)
			}
			defer back.Close()
			if string(gotCursor) != string(cursor) {
				t.Errorf("cursor %s, want %s", gotCursor, cursor)
			}
			if back.Steps() != 3 {
				t.Fatalf("resumed at step %d, want 3", back.Steps())
			}
			gotStats := step(t, back, batches[3])
			if gotStats != wantStats {
				t.Errorf("stats after resume %+v, uninterrupted %+v", gotStats, wantStats)
			}
			for name, w := range weightBytes(back.Policy()) {
				if string(w) != string(wantW[name]) {
					t.Errorf("%s differs after resume", name)
				}
			}
			if got := back.Rand().Uint64(); got != wantDraw {
				t.Errorf("random source after resume drew %d, uninterrupted %d", got, wantDraw)
			}
		})
	}
}

// TestSaveReplacesAtomically: saving over a checkpoint replaces it whole and leaves no temporary
// directories behind; a save that fails leaves the old checkpoint as it was.
func TestSaveReplacesAtomically(t *testing.T) {
	tensortest.LockThread(t)
	cfg := testConfig(AlgoMCTS, LossCISPO)
	tr := newTrainer(t, cfg, 13)
	parent := t.TempDir()
	dir := filepath.Join(parent, "latest")
	if err := tr.Save(dir, json.RawMessage(`1`)); err != nil {
		t.Fatal(err)
	}
	step(t, tr, sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_MCTS, 2, 1, 30, true))
	if err := tr.Save(dir, json.RawMessage(`2`)); err != nil {
		t.Fatal(err)
	}
	if err := tr.Save(dir, json.RawMessage(`{broken`)); !errors.Is(err, ErrCheckpoint) {
		t.Fatalf("invalid cursor: got %v, want ErrCheckpoint", err)
	}
	entries, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "latest" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("parent holds %v, want only the checkpoint", names)
	}
	st, err := readState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Step != 1 || string(st.Cursor) != "2" || st.ConfigSHA256 != configHash(cfg) {
		t.Fatalf("checkpoint holds step %d cursor %s hash %s; want the second save", st.Step, st.Cursor, st.ConfigSHA256)
	}
	for _, f := range []string{"config.json", "model.safetensors", optimizerFile, stateFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("checkpoint lacks %s: %v", f, err)
		}
	}
	// The policy part is an ordinary Hugging Face directory.
	m, err := model.Load(dir, model.Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
}

func TestResumeErrors(t *testing.T) {
	tensortest.LockThread(t)
	cfg := testConfig(AlgoMCTS, LossCISPO)
	tr := newTrainer(t, cfg, 14)
	ref := refModel(t, 14)
	good := filepath.Join(t.TempDir(), "good")
	if err := tr.Save(good, nil); err != nil {
		t.Fatal(err)
	}
	corrupt := func(name string, edit func(dir string)) string {
		dir := filepath.Join(t.TempDir(), name)
		if err := tr.Save(dir, nil); err != nil {
			t.Fatal(err)
		}
		edit(dir)
		return dir
	}
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	otherLR := cfg
	otherLR.Optim.LR *= 2
	grpo := testConfig(AlgoGRPO, "")
	cases := []struct {
		name, dir string
		cfg       Config
		want      string // in the error
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), cfg, "trainer.json"},
		{"other lr", good, otherLR, "optim.lr"},
		{"other algorithm", good, grpo, "algo"},
		{"state not JSON", corrupt("json", func(d string) { write(filepath.Join(d, stateFile), "{") }), cfg, "trainer.json"},
		{"unknown format", corrupt("format", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, stateFile))
			write(filepath.Join(d, stateFile), strings.Replace(string(b), `"format": 1`, `"format": 9`, 1))
		}), cfg, "format 9"},
		{"no optimizer", corrupt("optim", func(d string) { os.Remove(filepath.Join(d, optimizerFile)) }), cfg, "optimizer"},
		{"step mismatch", corrupt("step", func(d string) {
			b, _ := os.ReadFile(filepath.Join(d, stateFile))
			write(filepath.Join(d, stateFile), strings.Replace(string(b), `"step": 0`, `"step": 5`, 1))
		}), cfg, "step"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensortest.LockThread(t)
			back, _, err := Resume(c.dir, ref, c.cfg, model.Options{Device: gotch.CPU})
			if err == nil {
				back.Close()
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrCheckpoint) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v, want ErrCheckpoint mentioning %q", err, c.want)
			}
		})
	}
	t.Run("micro-batch may change", func(t *testing.T) {
		tensortest.LockThread(t)
		c := cfg
		c.MicroBatch = 1
		back, _, err := Resume(good, ref, c, model.Options{Device: gotch.CPU})
		if err != nil {
			t.Fatal(err)
		}
		back.Close()
	})
}
