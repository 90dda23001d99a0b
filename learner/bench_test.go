package learner

import (
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/sugarme/gotch"

	"tsd/model"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/tensor"
	"tsd/tensor/tensortest"
)

// Benchmarks of one learner step (forward + backward of every micro-batch, the reference model's
// forward, clipping, AdamW) on this machine's CPU. Run with
//
//	go test ./learner -run XXX -bench StepTiny -benchtime 5x
//	go test ./learner -run XXX -bench 'Step15B/layers=2' -benchtime 1x
//
// Metrics: seq-tokens/s counts every token the policy scores (prompt + completion),
// trained-tokens/s the completion tokens in the loss, peak-RSS-MB the process's high-water mark
// (VmHWM; run one benchmark per process to attribute it). BenchmarkStep15B uses Qwen2.5-1.5B's
// shapes with the layer count cut down: all 28 layers need ≈ 31 GB for weights, gradients, Adam
// moments and the reference model (20 bytes per parameter in f32), more than this machine has.

func benchTrainer(b *testing.B, cfg model.Config, lc Config) *Trainer {
	b.Helper()
	tensortest.LockThread(b)
	if err := tensor.SetThreads(runtime.NumCPU()); err != nil {
		b.Fatal(err)
	}
	opts := model.Options{Device: gotch.CPU}
	policy, err := model.Init(cfg, 1, opts)
	if err != nil {
		b.Fatal(err)
	}
	ref, err := model.Init(cfg, 1, opts)
	if err != nil {
		b.Fatal(err)
	}
	tr, err := NewTrainer(policy, ref, lc)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		tr.Close()
		ref.Close()
		runtime.UnlockOSThread()
	})
	return tr
}

// synthRollouts makes n single-sample MCTS rollouts of promptLen + completionLen random tokens with
// plausible behaviour log-probs and ±1 rewards (the step's cost does not depend on the values).
func synthRollouts(n, promptLen, completionLen, vocab int) []*tsdv1.Rollout {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]*tsdv1.Rollout, n)
	for i := range out {
		r := &tsdv1.Rollout{Algo: tsdv1.Algo_ALGO_MCTS, PromptIds: make([]int32, promptLen)}
		for j := range r.PromptIds {
			r.PromptIds[j] = int32(rng.IntN(vocab))
		}
		s := &tsdv1.Sample{CompletionIds: make([]int32, completionLen), Logprobs: make([]float32, completionLen), Reward: float32(2*(i%2) - 1)}
		for j := range s.CompletionIds {
			s.CompletionIds[j] = int32(rng.IntN(vocab))
			s.Logprobs[j] = -3 * float32(rng.Float64())
		}
		r.Samples = []*tsdv1.Sample{s}
		out[i] = r
	}
	return out
}

func benchSteps(b *testing.B, tr *Trainer, rollouts []*tsdv1.Rollout) {
	seqTokens, trained := 0, 0
	for _, r := range rollouts {
		seqTokens += len(r.PromptIds) + len(r.Samples[0].CompletionIds)
		trained += len(r.Samples[0].CompletionIds)
	}
	if _, err := tr.Step(rollouts); err != nil { // warm up: allocator, rope tables
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := tr.Step(rollouts); err != nil {
			b.Fatal(err)
		}
	}
	sec := b.Elapsed().Seconds()
	b.ReportMetric(float64(b.N*seqTokens)/sec, "seq-tokens/s")
	b.ReportMetric(float64(b.N*trained)/sec, "trained-tokens/s")
	b.ReportMetric(float64(peakRSS(b))/(1<<20), "peak-RSS-MB")
}

// BenchmarkStepTiny: the tiny preset, a global batch of 32 MCTS trajectories of 64 + 128 tokens in
// micro-batches of 8, CISPO + value + KL.
func BenchmarkStepTiny(b *testing.B) {
	cfg, err := model.Preset("tiny", 320)
	if err != nil {
		b.Fatal(err)
	}
	tr := benchTrainer(b, cfg, DefaultConfig())
	benchSteps(b, tr, synthRollouts(32, 64, 128, cfg.VocabSize))
}

// BenchmarkStep15B: Qwen2.5-1.5B's shapes (vocabulary 151,936, hidden 1,536, MLP 8,960, the value
// head 1,536→6,144→1,536→1) with 2 or 4 of its 28 layers, one trajectory of 128 + 256 tokens.
func BenchmarkStep15B(b *testing.B) {
	for _, layers := range []int{2, 4} {
		b.Run(fmt.Sprintf("layers=%d", layers), func(b *testing.B) {
			cfg, err := model.Preset("qwen2.5-1.5b", 0)
			if err != nil {
				b.Fatal(err)
			}
			cfg.NumHiddenLayers = layers
			lc := DefaultConfig()
			lc.GlobalBatch, lc.MicroBatch = 1, 1
			tr := benchTrainer(b, cfg, lc)
			benchSteps(b, tr, synthRollouts(1, 128, 256, cfg.VocabSize))
		})
	}
}

// peakRSS is the process's resident-set high-water mark in bytes.
func peakRSS(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}
