package learner

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"

	"github.com/sugarme/gotch"
	"golang.org/x/sys/unix"

	"tsd/model"
	"tsd/tensor"
)

// A checkpoint is a directory:
//
//	config.json, model.safetensors   the policy in Hugging Face layout (transformers loads it), in the
//	                                 policy's own dtype (f32, or bf16 with f32 masters in the optimizer)
//	optimizer.safetensors            AdamW's moments, master weights and step counters (optim.AdamW.Save)
//	trainer.json                     trainerState: step, config, RNG state, the caller's cursor
//
// Save builds it in a temporary directory beside the target, fsyncs it, and swaps it in with one
// rename, so a crash leaves either the old checkpoint or the new one, never a mix.
const (
	optimizerFile = "optimizer.safetensors"
	stateFile     = "trainer.json"
	stateFormat   = 1
)

// trainerState is trainer.json.
type trainerState struct {
	Format       int             `json:"format"`
	Step         int64           `json:"step"`
	Config       Config          `json:"config"`
	ConfigSHA256 string          `json:"config_sha256"` // of the config as written, for a quick comparison
	RNG          []byte          `json:"rng"`           // Trainer.Rand's PCG state
	Cursor       json.RawMessage `json:"cursor,omitempty"`
}

// Save writes a checkpoint of the trainer to dir, replacing any checkpoint there atomically. cursor
// is the caller's own resume state (e.g. its position in the data, as JSON; nil for none); Resume
// returns it. On CPU a trainer resumed from it takes the next step to the same bits as this one.
func (t *Trainer) Save(dir string, cursor json.RawMessage) (err error) {
	if len(cursor) > 0 && !json.Valid(cursor) {
		return fmt.Errorf("%w: cursor is not JSON", ErrCheckpoint)
	}
	return t.w.Do(context.Background(), func() error { return t.save(dir, cursor) })
}

func (t *Trainer) save(dir string, cursor json.RawMessage) error {
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	defer os.RemoveAll(tmp) // after a successful swap it holds the old checkpoint, or nothing
	if err := t.writeTo(tmp, cursor); err != nil {
		return err
	}
	if err := syncDir(tmp); err != nil {
		return fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	if err := swapDir(tmp, dir); err != nil {
		return fmt.Errorf("%w: replacing %s: %v", ErrCheckpoint, dir, err)
	}
	if err := syncDir(parent); err != nil {
		return fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	return nil
}

func (t *Trainer) writeTo(dir string, cursor json.RawMessage) error {
	dtype := t.params[0].Tensor.DType()
	if dtype != gotch.BFloat16 {
		dtype = gotch.Float // model.Save writes f32 or bf16; f64 models (gradient checks) save as f32
	}
	if err := t.policy.Save(dir, dtype); err != nil {
		return err
	}
	if err := t.opt.Save(filepath.Join(dir, optimizerFile)); err != nil {
		return err
	}
	rng, err := t.pcg.MarshalBinary()
	if err != nil {
		return err
	}
	st := trainerState{Format: stateFormat, Step: t.opt.Steps(), Config: t.cfg, ConfigSHA256: configHash(t.cfg), RNG: rng, Cursor: cursor}
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	return writeFileSync(filepath.Join(dir, stateFile), append(b, '\n'))
}

// Resume loads the checkpoint in dir: the policy onto opts.Device in opts.DType (trainable; the
// trainer owns it), the optimizer state, the step and the RNG state. cfg must equal the config the
// checkpoint was written with, except MicroBatch (which changes only memory use); ref is the frozen
// reference as for NewTrainer. It returns the cursor given to Save (as compact JSON).
func Resume(dir string, ref *model.Qwen2, cfg Config, opts model.Options) (_ *Trainer, cursor json.RawMessage, err error) {
	st, err := readState(dir)
	if err != nil {
		return nil, nil, err
	}
	if diff := configDiff(st.Config, cfg); len(diff) > 0 {
		return nil, nil, fmt.Errorf("%w: %s was written with different %v", ErrCheckpoint, dir, diff)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	w := tensor.NewWorker()
	var t *Trainer
	err = w.Do(context.Background(), func() error {
		t, err = resume(w, dir, ref, cfg, opts)
		return err
	})
	if err != nil {
		w.Close()
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			t.Close()
		}
	}()
	if t.opt.Steps() != st.Step {
		return nil, nil, fmt.Errorf("%w: %s: optimizer at step %d, trainer state at %d", ErrCheckpoint, dir, t.opt.Steps(), st.Step)
	}
	if err := t.pcg.UnmarshalBinary(st.RNG); err != nil {
		return nil, nil, fmt.Errorf("%w: %s: rng state: %v", ErrCheckpoint, dir, err)
	}
	if len(st.Cursor) > 0 {
		var c bytes.Buffer
		if err := json.Compact(&c, st.Cursor); err != nil {
			return nil, nil, fmt.Errorf("%w: %s: cursor: %v", ErrCheckpoint, dir, err)
		}
		cursor = c.Bytes()
	}
	return t, cursor, nil
}

// resume is Resume's tensor work, on w's thread: the policy, a trainer around it, and the
// optimizer state. On error nothing stays allocated.
func resume(w *tensor.Worker, dir string, ref *model.Qwen2, cfg Config, opts model.Options) (*Trainer, error) {
	opts.Trainable = true
	policy, err := model.Load(dir, opts)
	if err != nil {
		return nil, err
	}
	if policy.FreshValueHead() {
		policy.Close()
		return nil, fmt.Errorf("%w: %s has no value head", ErrCheckpoint, dir)
	}
	if cfg.KLCoef == 0 {
		ref = nil
	}
	if err := checkRef(policy, ref, cfg); err != nil {
		policy.Close()
		return nil, err
	}
	t, err := makeTrainer(w, policy, ref, cfg)
	if err != nil {
		policy.Close()
		return nil, err
	}
	if err := t.opt.Load(filepath.Join(dir, optimizerFile)); err != nil {
		t.opt.Close()
		policy.Close()
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return t, nil
}

func readState(dir string) (trainerState, error) {
	var st trainerState
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return st, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return st, fmt.Errorf("%w: %s: %v", ErrCheckpoint, stateFile, err)
	}
	if st.Format != stateFormat {
		return st, fmt.Errorf("%w: %s: format %d, this build reads %d", ErrCheckpoint, stateFile, st.Format, stateFormat)
	}
	if st.Step < 0 {
		return st, fmt.Errorf("%w: %s: step %d", ErrCheckpoint, stateFile, st.Step)
	}
	return st, nil
}

// configHash is the SHA-256 of the config's JSON.
func configHash(c Config) string {
	b, _ := json.Marshal(c) // a struct of numbers and strings always marshals
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// configDiff names the settings (as JSON keys, "optim.lr" for nested ones) that differ between a
// and b, ignoring micro_batch.
func configDiff(a, b Config) []string {
	fa, fb := flatJSON(a), flatJSON(b)
	var diff []string
	for k, v := range fa {
		if k != "micro_batch" && fb[k] != v {
			diff = append(diff, k)
		}
	}
	sort.Strings(diff)
	return diff
}

// flatJSON maps each leaf of v's JSON object to its encoded value.
func flatJSON(v any) map[string]string {
	b, _ := json.Marshal(v)
	var tree map[string]any
	_ = json.Unmarshal(b, &tree)
	out := map[string]string{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, x := range m {
			if sub, ok := x.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			enc, _ := json.Marshal(x)
			out[prefix+k] = string(enc)
		}
	}
	walk("", tree)
	return out
}

// swapDir puts the directory tmp at dir. When dir exists the two are exchanged atomically
// (renameat2 RENAME_EXCHANGE) and tmp then holds the old one; filesystems without exchange get
// two renames, which leave a moment without dir.
func swapDir(tmp, dir string) error {
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return os.Rename(tmp, dir)
	}
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, dir, unix.RENAME_EXCHANGE)
	if err == nil || !(errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) {
		return err
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// Close frees the policy and the optimizer state. The reference model is the caller's.
func (t *Trainer) Close() {
	t.w.Do(context.Background(), func() error { //nolint:errcheck // the worker runs until Close below
		t.opt.Close()
		t.policy.Close()
		return nil
	})
	t.w.Close()
}
