package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"tsd/hub"
	"tsd/model"
	"tsd/policy"
	"tsd/tensor"
	"tsd/tokenizer"
)

// modelFlags are the flags of every command that runs a model.
type modelFlags struct {
	model     string // directory or Hugging Face id
	tokenizer string // "" = the model directory's tokenizer.json
	device    string
	threads   int
}

func (f *modelFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.model, "model", "", "model directory or Hugging Face id (org/name[@revision])")
	cmd.Flags().StringVar(&f.tokenizer, "tokenizer", "", "tokenizer.json or its directory (default: the model's)")
	cmd.Flags().StringVar(&f.device, "device", "cpu", "cpu, cuda or cuda:N")
	cmd.Flags().IntVar(&f.threads, "threads", tensor.ThreadsFromEnv(runtime.NumCPU()), "libtorch CPU threads")
}

// open resolves the model reference, sets up libtorch and loads the model. It runs on a
// tensor.Worker (see onWorker).
func (f *modelFlags) open(cmd *cobra.Command, trainable bool) (*model.Qwen2, string, error) {
	if err := tensor.SetThreads(f.threads); err != nil {
		return nil, "", err
	}
	dir, dev, err := f.resolve(cmd)
	if err != nil {
		return nil, "", err
	}
	m, err := model.Load(dir, model.Options{Device: dev, Trainable: trainable})
	return m, dir, err
}

// resolve checks --model and --device and finds (or downloads) the model directory.
func (f *modelFlags) resolve(cmd *cobra.Command) (string, gotch.Device, error) {
	if f.model == "" {
		return "", gotch.CPU, fmt.Errorf("--model is required")
	}
	dev, err := parseDevice(f.device)
	if err != nil {
		return "", gotch.CPU, err
	}
	dir, err := hub.Resolve(cmd.Context(), f.model, hub.Options{Progress: cmd.ErrOrStderr()})
	return dir, dev, err
}

// openPolicy loads the model and its tokenizer onto a new worker; closing frees both.
func (f *modelFlags) openPolicy(cmd *cobra.Command) (*policy.Policy, *tokenizer.BPE, func(), error) {
	dir, dev, err := f.resolve(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	tok, err := f.openTokenizer(dir)
	if err != nil {
		return nil, nil, nil, err
	}
	w := tensor.NewWorker()
	if err := w.Do(cmd.Context(), func() error { return tensor.SetThreads(f.threads) }); err != nil {
		w.Close()
		return nil, nil, nil, err
	}
	pol, err := policy.Open(cmd.Context(), dir, policy.Options{Model: model.Options{Device: dev}, Tokenizer: tok, Worker: w})
	if err != nil {
		w.Close()
		return nil, nil, nil, err
	}
	return pol, tok, func() { pol.Close(); w.Close() }, nil
}

// openTokenizer loads --tokenizer, or the model directory's tokenizer.json.
func (f *modelFlags) openTokenizer(modelDir string) (*tokenizer.BPE, error) {
	path := f.tokenizer
	if path == "" {
		path = filepath.Join(modelDir, tokenizer.FileName)
	}
	return tokenizer.Load(path)
}

func parseDevice(s string) (gotch.Device, error) {
	switch s {
	case "cpu", "":
		return gotch.CPU, nil
	case "cuda":
		return gotch.CudaBuilder(0), nil
	}
	var n uint
	if _, err := fmt.Sscanf(s, "cuda:%d", &n); err == nil {
		return gotch.CudaBuilder(n), nil
	}
	return gotch.CPU, fmt.Errorf("--device %q: want cpu, cuda or cuda:N", s)
}

func newLMCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "lm", Short: "Run the language model: logits and generation over JSONL"}
	cmd.AddCommand(newLogitsCmd(), newGenerateCmd())
	return cmd
}

func newLogitsCmd() *cobra.Command {
	var mf modelFlags
	cmd := &cobra.Command{
		Use:   "logits",
		Short: `Read {"ids": [...]} lines, write {"logits": [[...], ...]} (every position, float32)`,
		Args:  cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			m, _, err := mf.open(cmd, false)
			if err != nil {
				return err
			}
			defer m.Close()
			return eachLine(cmd.InOrStdin(), cmd.OutOrStdout(), func(line int, in idsLine) (any, error) {
				out, err := m.Logits([][]int32{in.IDs})
				if err != nil {
					return nil, err
				}
				return map[string]any{"logits": out[0]}, nil
			})
		}),
	}
	mf.register(cmd)
	return cmd
}

type idsLine struct {
	IDs  []int32 `json:"ids"`
	Text string  `json:"text"`
}

func newGenerateCmd() *cobra.Command {
	var mf modelFlags
	var opts model.SampleOptions
	var text bool
	cmd := &cobra.Command{
		Use:   "generate",
		Short: `Read {"ids": [...]} (or {"text": ...} with --text) lines, write the new tokens`,
		Long: `Read {"ids": [...]} lines and write {"ids": [...new tokens...]}. With --text, read
{"text": "..."} and also write the decoded "text". Generation stops at the tokenizer's end-of-turn
and end-of-text tokens when a tokenizer is available. Temperature 0 is greedy.`,
		Args: cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			m, dir, err := mf.open(cmd, false)
			if err != nil {
				return err
			}
			defer m.Close()
			tok, err := mf.openTokenizer(dir)
			if err != nil && (text || mf.tokenizer != "") {
				return err
			}
			var dec model.Decoder
			if tok != nil {
				dec = tok
				opts.EOS = eosIDs(tok)
			}
			return eachLine(cmd.InOrStdin(), cmd.OutOrStdout(), func(line int, in idsLine) (any, error) {
				ids := in.IDs
				if text {
					ids = tok.Encode(in.Text)
				}
				c, err := m.Prefill([][]int32{ids})
				if err != nil {
					return nil, err
				}
				defer c.Close()
				out, err := m.Generate(c, opts, dec)
				if err != nil {
					return nil, err
				}
				res := map[string]any{"ids": out[0].Tokens}
				if text {
					res["text"] = tok.Decode(out[0].Tokens)
				}
				return res, nil
			})
		}),
	}
	mf.register(cmd)
	cmd.Flags().IntVar(&opts.MaxNewTokens, "max-new-tokens", 64, "tokens to generate at most")
	cmd.Flags().Float64Var(&opts.Temperature, "temperature", 0, "sampling temperature (0 = greedy)")
	cmd.Flags().Float64Var(&opts.TopP, "top-p", 1, "nucleus sampling mass")
	cmd.Flags().IntVar(&opts.TopK, "top-k", 0, "sample among the k most likely tokens (0 = all)")
	cmd.Flags().Int64Var(&opts.Seed, "seed", 0, "sampling seed")
	cmd.Flags().StringSliceVar(&opts.Stop, "stop", nil, "stop once the new text contains one of these")
	cmd.Flags().BoolVar(&text, "text", false, `read {"text": ...} and write the decoded text too`)
	return cmd
}

// eosIDs are the ids that end a ChatML turn or a document.
func eosIDs(tok *tokenizer.BPE) []int32 {
	var ids []int32
	for _, s := range []string{tokenizer.IMEnd, tokenizer.EndOfText} {
		if id, ok := tok.SpecialID(s); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// eachLine decodes JSON lines from r, calls fn, and writes its result as a JSON line, keeping order.
// A bad line stops with an error naming its number.
func eachLine(r io.Reader, w io.Writer, fn func(line int, in idsLine) (any, error)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	enc := json.NewEncoder(bw)
	for n := 1; sc.Scan(); n++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var in idsLine
		if err := json.Unmarshal(sc.Bytes(), &in); err != nil {
			return fmt.Errorf("line %d: %v", n, err)
		}
		out, err := fn(n, in)
		if err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	return sc.Err()
}

func newInitModelCmd() *cobra.Command {
	var preset, out, dtype, tokPath string
	var seed int64
	cmd := &cobra.Command{
		Use:   "init-model",
		Short: "Write a model with random weights (and its tokenizer) in Hugging Face layout",
		Long: `Write a Qwen2 model with random weights. The tiny preset (for tests and the CPU demo) also
writes the tiny byte-level tokenizer.json beside the weights and sizes its vocabulary to it; the
qwen2.5-1.5b preset has Qwen2.5-1.5B's shape (for benchmarks without real weights) and copies
--tokenizer into DIR when given.`,
		Args: cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			return initModel(cmd, preset, out, dtype, tokPath, seed)
		}),
	}
	cmd.Flags().StringVar(&preset, "preset", "tiny", "tiny or qwen2.5-1.5b")
	cmd.Flags().StringVar(&out, "out", "", "directory to write")
	cmd.Flags().StringVar(&dtype, "dtype", "f32", "f32 or bf16")
	cmd.Flags().StringVar(&tokPath, "tokenizer", "", "tokenizer.json to copy into DIR (qwen2.5-1.5b)")
	cmd.Flags().Int64Var(&seed, "seed", 1, "weight initialisation seed")
	return cmd
}

func initModel(cmd *cobra.Command, preset, out, dtype, tokPath string, seed int64) error {
	if out == "" {
		return fmt.Errorf("--out is required")
	}
	dt := map[string]gotch.DType{"f32": gotch.Float, "bf16": gotch.BFloat16}[dtype]
	if dt == 0 {
		return fmt.Errorf("--dtype %q: want f32 or bf16", dtype)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	vocab := 0
	switch {
	case preset == "tiny":
		if err := tokenizer.WriteTiny(out); err != nil {
			return err
		}
		tok, err := tokenizer.Load(out)
		if err != nil {
			return err
		}
		vocab = tok.VocabSize()
	case tokPath != "":
		if err := copyTokenizer(tokPath, out); err != nil {
			return err
		}
	}
	cfg, err := model.Preset(preset, vocab)
	if err != nil {
		return err
	}
	m, err := model.Init(cfg, seed, model.Options{Device: gotch.CPU})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Save(out, dt); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "wrote %s model (%d parameters, vocab %d) to %s\n", preset, paramCount(m), cfg.VocabSize, out)
	return nil
}

func copyTokenizer(from, dir string) error {
	if _, err := tokenizer.Load(from); err != nil { // refuse a file we could not use
		return err
	}
	src := from
	if fi, err := os.Stat(from); err == nil && fi.IsDir() {
		src = filepath.Join(from, tokenizer.FileName)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, tokenizer.FileName), b, 0o644)
}

func paramCount(m *model.Qwen2) int64 {
	var n int64
	for _, p := range m.Params() {
		n += int64(p.Tensor.Numel())
	}
	return n
}

// onWorker runs a command's body on a tensor.Worker of its own (libtorch keeps grad mode and its
// last error per OS thread), so no command locks its goroutine itself.
func onWorker(run func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		return tensor.OnWorker(func() error { return run(cmd, args) })
	}
}
