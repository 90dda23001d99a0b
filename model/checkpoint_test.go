package model

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

func tinyPreset(t *testing.T) *Qwen2 {
	t.Helper()
	cfg, err := Preset("tiny", 64)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 32, 48, 2
	m, err := Init(cfg, 1, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// TestSaveLoadBitExact: f32 save then load gives the same bytes for every weight, value head included.
func TestSaveLoadBitExact(t *testing.T) {
	tensortest.LockThread(t)
	m := tinyPreset(t)
	dir := t.TempDir()
	if err := m.Save(dir, gotch.Float); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	if back.FreshValueHead() {
		t.Fatal("saved value head not found on load")
	}
	want, got := m.Params(), back.Params()
	for i := range want {
		a, b := tensor.Float32s(want[i].Tensor), tensor.Float32s(got[i].Tensor)
		for j := range a {
			if a[j] != b[j] {
				t.Fatalf("%s[%d]: saved %v, loaded %v", want[i].Name, j, a[j], b[j])
			}
		}
	}
	cfg, err := ReadConfig(dir)
	if err != nil || cfg.TorchDtype != "float32" || cfg.Extra["use_sliding_window"] == nil {
		t.Fatalf("config round trip: %+v, %v", cfg, err)
	}
}

// TestBF16Checkpoint: a bf16 checkpoint loads into f32 as exactly the bf16-rounded weights, and its
// logits match those of the original model rounded the same way.
func TestBF16Checkpoint(t *testing.T) {
	tensortest.LockThread(t)
	m := tinyPreset(t)
	dir := t.TempDir()
	if err := m.Save(dir, gotch.BFloat16); err != nil {
		t.Fatal(err)
	}
	back, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	for i, p := range m.Params() {
		r := p.Tensor.MustTotype(gotch.BFloat16, false)
		want := tensor.Float32s(r)
		r.MustDrop()
		got := tensor.Float32s(back.Params()[i].Tensor)
		for j := range want {
			if want[j] != got[j] {
				t.Fatalf("%s[%d]: bf16-rounded %v, loaded %v", p.Name, j, want[j], got[j])
			}
		}
	}
	seq := [][]int32{{1, 5, 9, 33, 2}}
	a, err := back.Logits(seq)
	if err != nil {
		t.Fatal(err)
	}
	b, err := m.Logits(seq)
	if err != nil {
		t.Fatal(err)
	}
	if d := maxDiff32(a[0][4], b[0][4]); d > 0.05 {
		t.Fatalf("bf16 model's logits differ from f32 by %g", d)
	}
}

// TestLoadErrors: each broken checkpoint is refused with an error naming what is wrong.
func TestLoadErrors(t *testing.T) {
	tensortest.LockThread(t)
	m := tinyPreset(t)
	good := t.TempDir()
	if err := m.Save(good, gotch.Float); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		break_ func(t *testing.T, dir string)
		want   []string
	}{
		{"truncated", func(t *testing.T, dir string) {
			p := filepath.Join(dir, "model.safetensors")
			info, _ := os.Stat(p)
			must(t, os.Truncate(p, info.Size()-100))
		}, []string{"value_head", "truncated"}},
		{"missing tensor", func(t *testing.T, dir string) {
			rewrite(t, dir, func(w map[string]*ts.Tensor) { delete(w, "model.layers.1.mlp.up_proj.weight") })
		}, []string{"model.layers.1.mlp.up_proj.weight", "missing"}},
		{"extra tensor", func(t *testing.T, dir string) {
			rewrite(t, dir, func(w map[string]*ts.Tensor) {
				w["model.layers.7.mlp.up_proj.weight"] = ts.MustZeros([]int64{2}, gotch.Float, gotch.CPU)
			})
		}, []string{"model.layers.7.mlp.up_proj.weight", "not part"}},
		{"misshaped", func(t *testing.T, dir string) {
			rewrite(t, dir, func(w map[string]*ts.Tensor) {
				w["model.norm.weight"] = ts.MustZeros([]int64{31}, gotch.Float, gotch.CPU)
			})
		}, []string{"model.norm.weight", "[31]", "[32]"}},
		{"unknown architecture", func(t *testing.T, dir string) {
			editConfig(t, dir, func(c map[string]any) { c["model_type"] = "llama"; c["architectures"] = []string{"LlamaForCausalLM"} })
		}, []string{"LlamaForCausalLM", "Qwen2"}},
		{"not safetensors", func(t *testing.T, dir string) {
			must(t, os.WriteFile(filepath.Join(dir, "model.safetensors"), []byte("<html>404</html>"), 0o644))
		}, []string{"header"}},
		{"shard missing from index", func(t *testing.T, dir string) {
			idx := `{"weight_map": {"model.norm.weight": "model-00002-of-00002.safetensors"}}`
			must(t, os.WriteFile(filepath.Join(dir, indexFile), []byte(idx), 0o644))
		}, []string{"model-00002-of-00002.safetensors"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := copyDir(t, good)
			c.break_(t, dir)
			_, err := Load(dir, Options{Device: gotch.CPU})
			if err == nil {
				t.Fatal("loaded a broken checkpoint")
			}
			if !errors.Is(err, ErrCheckpoint) && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is neither ErrCheckpoint nor ErrConfig", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// TestShardedCheckpoint: weights split over two files with an index load like one file.
func TestShardedCheckpoint(t *testing.T) {
	tensortest.LockThread(t)
	m := tinyPreset(t)
	dir := t.TempDir()
	must(t, m.Save(dir, gotch.Float))
	all := readAll(t, dir)
	must(t, os.Remove(filepath.Join(dir, "model.safetensors")))
	parts := []map[string]*ts.Tensor{{}, {}}
	index := map[string]string{}
	i := 0
	for name, x := range all {
		shard := i % 2
		parts[shard][name] = x
		index[name] = []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[shard]
		i++
	}
	for s, part := range parts {
		must(t, tensor.WriteSafetensors(filepath.Join(dir, []string{"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}[s]), part, gotch.Float, nil))
	}
	b, _ := json.Marshal(map[string]any{"weight_map": index})
	must(t, os.WriteFile(filepath.Join(dir, indexFile), b, 0o644))
	back, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	seq := [][]int32{{3, 1, 4, 1, 5}}
	a, _ := back.Logits(seq)
	w, _ := m.Logits(seq)
	if d := maxDiff32(a[0][4], w[0][4]); d != 0 {
		t.Fatalf("sharded checkpoint's logits differ by %g", d)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readAll(t *testing.T, dir string) map[string]*ts.Tensor {
	t.Helper()
	f, err := tensor.OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string]*ts.Tensor{}
	for _, name := range f.Names() {
		x, err := f.Load(name)
		if err != nil {
			t.Fatal(err)
		}
		out[name] = x
	}
	return out
}

func rewrite(t *testing.T, dir string, edit func(map[string]*ts.Tensor)) {
	t.Helper()
	w := readAll(t, dir)
	edit(w)
	must(t, tensor.WriteSafetensors(filepath.Join(dir, "model.safetensors"), w, gotch.Float, nil))
}

func editConfig(t *testing.T, dir string, edit func(map[string]any)) {
	t.Helper()
	p := filepath.Join(dir, "config.json")
	b, err := os.ReadFile(p)
	must(t, err)
	var c map[string]any
	must(t, json.Unmarshal(b, &c))
	edit(c)
	b, _ = json.Marshal(c)
	must(t, os.WriteFile(p, b, 0o644))
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	entries, err := os.ReadDir(src)
	must(t, err)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		must(t, err)
		must(t, os.WriteFile(filepath.Join(dst, e.Name()), b, 0o644))
	}
	return dst
}

// TestF16Checkpoint: an f16 checkpoint (which transformers can write) loads as f32, equal to the
// f16-rounded weights (libtorch 1.13 has no f16 math on CPU, so the loader converts).
func TestF16Checkpoint(t *testing.T) {
	tensortest.LockThread(t)
	m := tinyPreset(t)
	dir := t.TempDir()
	must(t, m.Save(dir, gotch.Float))
	all := readAll(t, dir)
	must(t, tensor.WriteSafetensors(filepath.Join(dir, "model.safetensors"), all, gotch.Half, nil))
	back, err := Load(dir, Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer back.Close()
	for i, p := range m.Params() {
		r := p.Tensor.MustTotype(gotch.Half, false)
		want := tensor.Float32s(r)
		r.MustDrop()
		got := tensor.Float32s(back.Params()[i].Tensor)
		for j := range want {
			if want[j] != got[j] {
				t.Fatalf("%s[%d]: f16-rounded %v, loaded %v", p.Name, j, want[j], got[j])
			}
		}
	}
}
