package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"tsd/tensor"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

// Options say where a model lives and how it is used.
type Options struct {
	Device gotch.Device // gotch.CPU or gotch.CudaBuilder(i)
	// DType of weights and activations; 0 picks f32 on CPU and bf16 on CUDA.
	DType gotch.DType
	// Trainable turns on gradients for every weight (the learner); actors leave it off.
	Trainable bool
}

func (o Options) dtype() gotch.DType {
	if o.DType != 0 {
		return o.DType
	}
	if o.Device.IsCuda() {
		return gotch.BFloat16
	}
	return gotch.Float
}

// indexFile is the Hugging Face index of a sharded checkpoint.
const indexFile = "model.safetensors.index.json"

// ignorable are tensors some checkpoints carry that the forward pass derives itself.
func ignorable(name string, cfg Config) bool {
	return strings.HasSuffix(name, "rotary_emb.inv_freq") || (name == "lm_head.weight" && cfg.TieWordEmbeddings)
}

// Load reads a Hugging Face model directory: config.json and model.safetensors, or shards listed in
// model.safetensors.index.json. A missing value head is created fresh (FreshValueHead reports it).
func Load(dir string, opts Options) (_ *Qwen2, err error) {
	cfg, err := ReadConfig(dir)
	if err != nil {
		return nil, err
	}
	files, err := shardFiles(dir)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		defer f.Close()
	}
	where := map[string]*tensor.Safetensors{}
	for _, f := range files {
		for _, name := range f.Names() {
			where[name] = f
		}
	}
	m := newQwen2(cfg, opts.Device, opts.dtype())
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := m.checkNames(where); err != nil {
		return nil, err
	}
	for _, p := range m.params {
		f, ok := where[p.name]
		if !ok { // value head only (checkNames let nothing else through)
			if err := m.initParam(p); err != nil {
				return nil, err
			}
			m.freshValue = true
			continue
		}
		if err := m.loadParam(p, f); err != nil {
			return nil, err
		}
	}
	if err := m.finish(opts); err != nil {
		return nil, err
	}
	return m, nil
}

// checkNames reports the first missing, misshaped or unknown tensor.
func (m *Qwen2) checkNames(where map[string]*tensor.Safetensors) error {
	known := map[string]bool{}
	for _, p := range m.params {
		known[p.name] = true
		f, ok := where[p.name]
		if !ok {
			if strings.HasPrefix(p.name, valueHeadPrefix) {
				continue
			}
			return fmt.Errorf("%w: tensor %s is missing", ErrCheckpoint, p.name)
		}
		if got, _ := f.Shape(p.name); !slices.Equal(got, p.shape) {
			return fmt.Errorf("%w: %s: tensor %s has shape %v, config says %v", ErrCheckpoint, f.Path(), p.name, got, p.shape)
		}
	}
	var extra []string
	for name := range where {
		if !known[name] && !ignorable(name, m.cfg) {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		sort.Strings(extra)
		return fmt.Errorf("%w: tensor %s is not part of a %d-layer Qwen2 (%d unknown tensors)", ErrCheckpoint, extra[0], m.cfg.NumHiddenLayers, len(extra))
	}
	return nil
}

func (m *Qwen2) loadParam(p param, f *tensor.Safetensors) (err error) {
	x, err := f.Load(p.name)
	if err != nil {
		return checkpointErr(err)
	}
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	tp.T(x, nil)
	if x.DType() != m.dtype {
		x = tp.T(x.Totype(m.dtype, false))
	}
	if m.dev != gotch.CPU {
		x = tp.T(x.To(m.dev, false))
	}
	*p.ptr = tp.Detach(x)
	return nil
}

// shardFiles opens the safetensors files of dir.
func shardFiles(dir string) ([]*tensor.Safetensors, error) {
	if _, err := os.Stat(filepath.Join(dir, indexFile)); err == nil {
		return openShards(dir)
	}
	f, err := tensor.OpenSafetensors(filepath.Join(dir, "model.safetensors"))
	if err != nil {
		return nil, checkpointErr(err)
	}
	return []*tensor.Safetensors{f}, nil
}

func openShards(dir string) ([]*tensor.Safetensors, error) {
	b, err := os.ReadFile(filepath.Join(dir, indexFile))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCheckpoint, err)
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCheckpoint, indexFile, err)
	}
	byFile := map[string]bool{}
	for _, f := range idx.WeightMap {
		if strings.Contains(f, "/") || strings.Contains(f, `\`) {
			return nil, fmt.Errorf("%w: %s names a shard outside the directory: %q", ErrCheckpoint, indexFile, f)
		}
		byFile[f] = true
	}
	names := make([]string, 0, len(byFile))
	for f := range byFile {
		names = append(names, f)
	}
	sort.Strings(names)
	var files []*tensor.Safetensors
	for _, n := range names {
		f, err := tensor.OpenSafetensors(filepath.Join(dir, n))
		if err != nil {
			closeAll(files)
			return nil, checkpointErr(err)
		}
		files = append(files, f)
	}
	for name, shard := range idx.WeightMap {
		if err := findIn(files, name, shard); err != nil {
			closeAll(files)
			return nil, err
		}
	}
	return files, nil
}

func findIn(files []*tensor.Safetensors, name, shard string) error {
	for _, f := range files {
		if filepath.Base(f.Path()) == shard {
			if _, ok := f.Shape(name); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: index says tensor %s is in %s, which does not have it", ErrCheckpoint, name, shard)
}

// checkpointErr marks a safetensors file error as this package's ErrCheckpoint; libtorch errors
// stay ErrTorch.
func checkpointErr(err error) error {
	if errors.Is(err, tensor.ErrSafetensors) {
		return fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	return err
}

func closeAll(files []*tensor.Safetensors) {
	for _, f := range files {
		f.Close()
	}
}

// Init makes a model with random weights for cfg (N(0, 0.02) matrices, zero biases, unit norms, as
// Hugging Face initialises Qwen2), seeded.
func Init(cfg Config, seed int64, opts Options) (m *Qwen2, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ts.ManualSeed(seed)
	m = newQwen2(cfg, opts.Device, opts.dtype())
	for _, p := range m.params {
		if err := m.initParam(p); err != nil {
			m.Close()
			return nil, err
		}
	}
	if err := m.finish(opts); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Qwen2) initParam(p param) (err error) {
	defer tensor.Catch(&err)
	var tp tensor.Scope
	defer tp.Free()
	var x *ts.Tensor
	switch p.kind {
	case kindMatrix:
		x = tp.T(ts.Randn(p.shape, gotch.Float, gotch.CPU))
		x = tp.T(x.MulScalar(tp.Scalar(0.02), false))
	case kindBias:
		x = tp.T(ts.Zeros(p.shape, gotch.Float, gotch.CPU))
	case kindNorm:
		x = tp.T(ts.Ones(p.shape, gotch.Float, gotch.CPU))
	}
	if m.dtype != gotch.Float {
		x = tp.T(x.Totype(m.dtype, false))
	}
	if m.dev != gotch.CPU {
		x = tp.T(x.To(m.dev, false))
	}
	*p.ptr = tp.Detach(x)
	return nil
}

// finish prepares the rotary tables' rotation and sets gradients on or off for every weight.
func (m *Qwen2) finish(opts Options) (err error) {
	func() {
		defer tensor.Catch(&err)
		m.rope.rotation(m.dev, m.dtype)
	}()
	if err != nil {
		return err
	}
	return m.SetTrainable(opts.Trainable)
}

// SetTrainable turns gradients on or off for every weight. A model that is not trainable decodes
// with fused weights (fuse.go).
func (m *Qwen2) SetTrainable(on bool) (err error) {
	m.unfuse()
	func() {
		defer tensor.Catch(&err)
		for _, p := range m.params {
			x, err := (*p.ptr).SetRequiresGrad(on, false)
			if err != nil {
				tensor.Check(err)
			}
			(*p.ptr).MustDrop()
			*p.ptr = x
		}
	}()
	if err != nil || on {
		return err
	}
	return m.fuse()
}

// FreshValueHead reports whether Load created the value head because the checkpoint had none.
func (m *Qwen2) FreshValueHead() bool { return m.freshValue }

// Params lists every weight in checkpoint-name order (the tied head appears once, as the embedding).
// The tensors stay owned by the model.
func (m *Qwen2) Params() []tensor.Param {
	out := make([]tensor.Param, len(m.params))
	for i, p := range m.params {
		out[i] = tensor.Param{Name: p.name, Tensor: *p.ptr}
	}
	return out
}

// Save writes dir/config.json and dir/model.safetensors in dtype (gotch.Float or gotch.BFloat16),
// each atomically. transformers loads the result (it ignores the value_head.* tensors).
func (m *Qwen2) Save(dir string, dtype gotch.DType) error {
	if dtype != gotch.Float && dtype != gotch.BFloat16 {
		return fmt.Errorf("%w: save dtype %v (f32 or bf16)", ErrInput, dtype)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tensors := map[string]*ts.Tensor{}
	for _, p := range m.params {
		tensors[p.name] = *p.ptr
	}
	if err := tensor.WriteSafetensors(filepath.Join(dir, "model.safetensors"), tensors, dtype, map[string]string{"format": "pt"}); err != nil {
		return err
	}
	cfg := m.cfg
	cfg.TorchDtype = map[gotch.DType]string{gotch.Float: "float32", gotch.BFloat16: "bfloat16"}[dtype]
	return WriteConfig(dir, cfg)
}

// IsValueHead reports whether a weight name (from Params) belongs to the value head, which a
// learner without a value loss leaves out of its optimizer.
func IsValueHead(name string) bool { return strings.HasPrefix(name, valueHeadPrefix) }
