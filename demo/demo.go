// Package demo is the embedded default: the source's experiment in miniature on a CPU. It makes a
// tiny Qwen2-shaped model and tokenizer, warm-starts it by supervised fine-tuning on solver-written
// worked solutions of an easy Countdown variant, evaluates it (mean@16, no search), runs the real
// distributed system on loopback (raft coordinator, learner, actors over gRPC) for a fixed
// wall-clock budget with one algorithm, evaluates again, and reports a table and a plot. Compare
// does the same for each algorithm from one warm start, plus MCTS at test time against best-of-N at
// the same token budget.
package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sugarme/gotch"

	"tsd/algo"
	"tsd/countdown"
	"tsd/eval"
	"tsd/local"
	"tsd/mcts"
	"tsd/model"
	"tsd/policy"
	"tsd/sft"
	"tsd/tensor"
	"tsd/tokenizer"
)

// Config sizes the demo.
type Config struct {
	Dir   string // everything goes here
	Seed  uint64
	Algos []string // mcts, cispo, grpo, best-of-n; each gets its own RL run from the same warm start
	// TrainProblems and TestProblems are generated (easy preset), disjoint, from Seed.
	TrainProblems, TestProblems int
	SFT                         sft.Config
	// RLBudget is each algorithm's wall-clock budget: equal compute for every algorithm.
	RLBudget time.Duration
	Actors   int
	BasePort int
	Eval     eval.Config
	// TestTime also compares MCTS at test time with best-of-N at the same token budget.
	TestTime bool
	// Threads for the in-process phases (SFT, evaluation); each RL process uses one thread.
	Threads int
}

// DefaultConfig is `make run`: MCTS distillation for four minutes after a warm start.
func DefaultConfig() Config {
	sc := sft.DefaultConfig()
	sc.Steps = 300
	ec := eval.DefaultConfig()
	ec.MaxNewTokens, ec.Batch, ec.Style = 64, 50, countdown.Compact
	return Config{Dir: "runs/demo", Seed: 1, Algos: []string{"mcts"}, TrainProblems: 5000, TestProblems: 200,
		SFT: sc, RLBudget: 4 * time.Minute, Actors: 2, BasePort: 17000, Eval: ec, Threads: 1}
}

// Row is one line of the results table.
type Row struct {
	Name     string       `json:"name"`
	Summary  eval.Summary `json:"summary"`
	Steps    uint64       `json:"learner_steps,omitempty"`
	Versions uint64       `json:"versions,omitempty"`
	Rollouts uint64       `json:"rollouts_trained,omitempty"`
	Tokens   int64        `json:"rl_generated_tokens,omitempty"`
	Progress string       `json:"progress,omitempty"` // progress.jsonl of its RL run
}

// Results is what the demo measured.
type Results struct {
	Config   Config        `json:"config"`
	Rows     []Row         `json:"rows"`
	TestTime []Row         `json:"test_time,omitempty"`
	Took     time.Duration `json:"took_ns"`
}

// Run executes the demo, printing progress to w.
func Run(ctx context.Context, cfg Config, w io.Writer, log *slog.Logger) (*Results, error) {
	start := time.Now()
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, err
	}
	if err := tensor.SetThreads(cfg.Threads); err != nil {
		return nil, err
	}
	train, test, err := problems(cfg)
	if err != nil {
		return nil, err
	}
	trainPath, testPath := filepath.Join(cfg.Dir, "train.jsonl"), filepath.Join(cfg.Dir, "test.jsonl")
	if err := writeProblems(trainPath, train); err != nil {
		return nil, err
	}
	if err := writeProblems(testPath, test); err != nil {
		return nil, err
	}
	warm, err := warmStart(ctx, cfg, train, w)
	if err != nil {
		return nil, err
	}
	res := &Results{Config: cfg}
	before, err := evaluate(ctx, cfg, warm, test, w, "before RL (warm start)")
	if err != nil {
		return nil, err
	}
	res.Rows = append(res.Rows, Row{Name: "before RL (SFT warm start)", Summary: before})
	for i, name := range cfg.Algos {
		row, err := rl(ctx, cfg, i, name, warm, trainPath, test, w, log)
		if err != nil {
			return nil, err
		}
		res.Rows = append(res.Rows, row)
	}
	if cfg.TestTime {
		if res.TestTime, err = testTime(ctx, cfg, warm, test, w); err != nil {
			return nil, err
		}
	}
	res.Took = time.Since(start)
	return res, nil
}

// problems generates the easy train and test sets, disjoint.
func problems(cfg Config) (train, test []countdown.Problem, err error) {
	gc := countdown.EasyGenConfig()
	gc.Count = cfg.TrainProblems + cfg.TestProblems
	all, err := countdown.Generate(gc, rand.New(rand.NewPCG(cfg.Seed, 0xc0ffee)))
	if err != nil {
		return nil, nil, err
	}
	seen := map[string]bool{}
	for _, p := range all {
		k := fmt.Sprint(p.Input, p.Target)
		if seen[k] {
			continue
		}
		seen[k] = true
		if len(test) < cfg.TestProblems {
			test = append(test, p)
		} else {
			train = append(train, p)
		}
	}
	if len(test) < cfg.TestProblems || len(train) == 0 {
		return nil, nil, fmt.Errorf("demo: only %d distinct problems for %d test + %d train", len(seen), cfg.TestProblems, cfg.TrainProblems)
	}
	return train, test, nil
}

func writeProblems(path string, ps []countdown.Problem) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := countdown.Write(f, ps); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// warmStart makes the tiny model and fine-tunes it, or reuses the result of an identical earlier
// run (its config is recorded beside it).
func warmStart(ctx context.Context, cfg Config, train []countdown.Problem, w io.Writer) (string, error) {
	dir := filepath.Join(cfg.Dir, "model-sft")
	stamp, _ := json.Marshal(struct {
		SFT   sft.Config
		Seed  uint64
		Train int
	}{cfg.SFT, cfg.Seed, len(train)})
	if old, err := os.ReadFile(filepath.Join(dir, "demo-stamp.json")); err == nil && string(old) == string(stamp) {
		fmt.Fprintf(w, "warm start: reusing %s\n", dir)
		return dir, nil
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := tokenizer.WriteTiny(dir); err != nil {
		return "", err
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return "", err
	}
	mc, err := model.Preset("tiny", tok.VocabSize())
	if err != nil {
		return "", err
	}
	m, err := model.Init(mc, int64(cfg.Seed), model.Options{Device: gotch.CPU, Trainable: true})
	if err != nil {
		return "", err
	}
	defer m.Close()
	examples, _, err := sft.Examples(tok, countdown.Compact, train)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(w, "warm start: fine-tuning a %d-parameter model on %d worked solutions for %d steps\n", params(m), len(examples), cfg.SFT.Steps)
	steps, err := sft.Train(ctx, m, examples, cfg.SFT, func(step int, loss float64, took time.Duration) {
		if step%50 == 0 {
			fmt.Fprintf(w, "  sft step %4d  loss %.3f  %s\n", step, loss, took.Round(time.Second))
		}
	})
	if err != nil {
		return "", err
	}
	if err := m.Save(dir, gotch.Float); err != nil {
		return "", err
	}
	fmt.Fprintf(w, "warm start: %d steps done\n", steps)
	return dir, os.WriteFile(filepath.Join(dir, "demo-stamp.json"), stamp, 0o644)
}

func params(m *model.Qwen2) int64 {
	var n int64
	for _, p := range m.Params() {
		n += int64(p.Tensor.Numel())
	}
	return n
}

// openPolicy loads a model directory onto a new worker.
func openPolicy(ctx context.Context, dir string) (*policy.Policy, *tokenizer.BPE, func(), error) {
	pol, err := policy.Open(ctx, dir, policy.Options{Model: model.Options{Device: gotch.CPU}})
	if err != nil {
		return nil, nil, nil, err
	}
	return pol, pol.Tokenizer(), func() { pol.Close() }, nil
}

// evaluate measures mean@k without search.
func evaluate(ctx context.Context, cfg Config, dir string, test []countdown.Problem, w io.Writer, what string) (eval.Summary, error) {
	pol, tok, done, err := openPolicy(ctx, dir)
	if err != nil {
		return eval.Summary{}, err
	}
	defer done()
	s, _, err := eval.Run(ctx, pol, tok, test, cfg.Eval, false, nil)
	if err != nil {
		return eval.Summary{}, err
	}
	fmt.Fprintf(w, "eval %s: mean@%d %.1f%%  pass@%d %.1f%%  dense %+.3f  (%d problems, %.0fs)\n",
		what, s.K, 100*s.MeanAtK, s.K, 100*s.PassAtK, s.MeanDense, s.Problems, s.Seconds)
	return s, nil
}

// Tiny-scale settings of the RL runs (the source's algorithms, a learning rate for a model of a
// million parameters, one thread per process).
const (
	groupSize = 16 // samples per prompt of the group algorithms
	bestOfN   = 64 // samples per prompt of best-of-N
)

// rlArgs are the learner's and actors' settings for an algorithm at tiny scale.
func rlArgs(a algo.Algo, seed uint64) (learnerArgs, actorArgs []string) {
	learnerArgs = []string{"--threads", "1", "--global-batch", "32", "--micro-batch", "32", "--publish-every", "2",
		"--lr", "1e-4", "--kl-coef", "0.05", "--max-lag", "4", "--max-buffer", "64", "--train-seed", fmt.Sprint(seed)}
	actorArgs = []string{"--threads", "1", "--prompt-style", "compact", "--max-new-tokens", "64"}
	switch a.Rollout {
	case algo.RolloutSearch:
		actorArgs = append(actorArgs, "--wave", "8", "--workers", "4", "--iterations", "4", "--step-max-tokens", "16", "--search-max-new-tokens", "64")
	case algo.RolloutGroup:
		actorArgs = append(actorArgs, "--wave", "4", "--group-size", fmt.Sprint(groupSize), "--sample-temperature", "1.0")
		learnerArgs = append(learnerArgs, "--group-size", fmt.Sprint(groupSize))
	case algo.RolloutBestOfN:
		actorArgs = append(actorArgs, "--wave", "4", "--best-of", fmt.Sprint(bestOfN), "--sample-temperature", "0.8")
	}
	return learnerArgs, actorArgs
}

// rl runs one algorithm on the distributed system for the budget, then evaluates the last version.
func rl(ctx context.Context, cfg Config, i int, name, warm, trainPath string, test []countdown.Problem, w io.Writer, log *slog.Logger) (Row, error) {
	dir := filepath.Join(cfg.Dir, "rl-"+name)
	if err := os.RemoveAll(dir); err != nil {
		return Row{}, err
	}
	a, err := algo.Lookup(name)
	if err != nil {
		return Row{}, fmt.Errorf("demo: %w", err)
	}
	la, aa := rlArgs(a, cfg.Seed)
	lc := local.Config{DataDir: dir, Model: warm, Problems: trainPath, Actors: cfg.Actors, Algo: name,
		BasePort: cfg.BasePort + 1000*i, Duration: cfg.RLBudget, Progress: 15 * time.Second, LearnerArgs: la, ActorArgs: aa}
	fmt.Fprintf(w, "RL %s: coordinator + learner + %d actors on loopback for %s\n", name, cfg.Actors, cfg.RLBudget)
	sys, err := local.Start(ctx, lc, log)
	if err != nil {
		return Row{}, err
	}
	if err := sys.Watch(ctx, w); err != nil {
		return Row{}, err
	}
	last, err := lastRecord(filepath.Join(dir, "progress.jsonl"))
	if err != nil {
		return Row{}, err
	}
	final, err := latestVersion(filepath.Join(dir, "learner", "versions"))
	if err != nil {
		return Row{}, err
	}
	s, err := evaluate(ctx, cfg, final, test, w, "after "+name)
	if err != nil {
		return Row{}, err
	}
	return Row{Name: rowName(a), Summary: s, Steps: last.Step, Versions: last.Version, Rollouts: last.Rollouts,
		Progress: filepath.Join(dir, "progress.jsonl")}, nil
}

// rowName is the algorithm's title with the tiny-scale settings that matter for comparing it.
func rowName(a algo.Algo) string {
	switch a.Rollout {
	case algo.RolloutBestOfN:
		return fmt.Sprintf("%s (N=%d)", a.Title, bestOfN)
	case algo.RolloutGroup:
		return fmt.Sprintf("%s (%d samples/prompt)", a.Title, groupSize)
	}
	return a.Title
}

// latestVersion is the directory of the highest version in a learner's store.
func latestVersion(store string) (string, error) {
	entries, err := os.ReadDir(store)
	if err != nil {
		return "", err
	}
	best := ""
	for _, e := range entries {
		if e.IsDir() && strings.HasPrefix(e.Name(), "v") && e.Name() > best {
			best = e.Name()
		}
	}
	if best == "" {
		return "", fmt.Errorf("demo: the learner published no version in %s", store)
	}
	return filepath.Join(store, best), nil
}

func lastRecord(path string) (local.ProgressRecord, error) {
	recs, err := ReadProgress(path)
	if err != nil || len(recs) == 0 {
		return local.ProgressRecord{}, fmt.Errorf("demo: no progress in %s: %v", path, err)
	}
	return recs[len(recs)-1], nil
}

// ReadProgress reads a progress.jsonl.
func ReadProgress(path string) ([]local.ProgressRecord, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []local.ProgressRecord
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r local.ProgressRecord
		if err := json.Unmarshal([]byte(line), &r); err == nil {
			out = append(out, r)
		}
	}
	return out, nil
}

// testTime compares, on the warm-started model, MCTS at test time (one search per problem) with
// best-of-N sampling, N chosen so both generate about the same number of tokens per problem.
func testTime(ctx context.Context, cfg Config, warm string, test []countdown.Problem, w io.Writer) ([]Row, error) {
	pol, tok, done, err := openPolicy(ctx, warm)
	if err != nil {
		return nil, err
	}
	defer done()
	sc := mcts.DefaultConfig()
	sc.Workers, sc.Iterations, sc.StepMaxTokens, sc.MaxNewTokens = 4, 4, 16, 64
	ec := cfg.Eval
	ec.K, ec.Batch = 1, 8
	search, _, err := eval.RunSearch(ctx, pol, tok, test, ec, sc, false, nil)
	if err != nil {
		return nil, err
	}
	perProblem := float64(search.Tokens) / float64(search.Problems)
	ec.K, ec.Temperature, ec.Batch = 1, 0.8, 50
	probe, _, err := eval.Run(ctx, pol, tok, test, ec, false, nil)
	if err != nil {
		return nil, err
	}
	n := max(1, int(perProblem/(float64(probe.Tokens)/float64(probe.Problems))+0.5))
	ec.K, ec.Batch = n, max(1, 400/n)
	best, _, err := eval.Run(ctx, pol, tok, test, ec, false, nil)
	if err != nil {
		return nil, err
	}
	// Best-of-N picks the sample with the highest dense reward, so it is right exactly when one
	// of the N samples is: its accuracy is pass@N.
	bestRow := Row{Name: fmt.Sprintf("best-of-%d at test time", n), Summary: best}
	bestRow.Summary.MeanAtK = best.PassAtK
	fmt.Fprintf(w, "test time, %.0f tokens/problem: MCTS %.1f%%, best-of-%d %.1f%% (%.0f tokens/problem)\n",
		perProblem, 100*search.MeanAtK, n, 100*best.PassAtK, float64(best.Tokens)/float64(best.Problems))
	return []Row{{Name: "MCTS at test time (16 simulations)", Summary: search}, bestRow}, nil
}
