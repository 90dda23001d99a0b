package model

import (
	"fmt"
	"runtime"
	"testing"

	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

// Benchmarks of the model on this machine's CPU. tokens/s is reported as a metric; run with
//
//	go test ./model -run XXX -bench . -benchtime 3x
//
// BenchmarkDecode15B needs ~7 GB of memory and minutes; it runs only with -bench Decode15B.

func benchModel(b *testing.B, preset string, vocab int) *Qwen2 {
	b.Helper()
	cfg, err := Preset(preset, vocab)
	if err != nil {
		b.Fatal(err)
	}
	m, err := Init(cfg, 1, Options{Device: gotch.CPU})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(m.Close)
	return m
}

func benchDecode(b *testing.B, m *Qwen2, batch, promptLen, newTokens int) {
	tensortest.LockThread(b)
	if err := tensor.SetThreads(benchThreads()); err != nil {
		b.Fatal(err)
	}
	prompts := make([][]int32, batch)
	for i := range prompts {
		prompts[i] = make([]int32, promptLen)
		for j := range prompts[i] {
			prompts[i][j] = int32((i*7 + j*13) % m.cfg.VocabSize)
		}
	}
	opts := SampleOptions{Temperature: 1, MaxNewTokens: newTokens}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		c, err := m.Prefill(prompts)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Generate(c, opts, nil); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
	b.ReportMetric(float64(b.N*batch*newTokens)/b.Elapsed().Seconds(), "tokens/s")
}

func BenchmarkDecodeTiny(b *testing.B) {
	m := benchModel(b, "tiny", 320)
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchDecode(b, m, batch, 32, 128) })
	}
}

func BenchmarkDecode15B(b *testing.B) {
	m := benchModel(b, "qwen2.5-1.5b", 0)
	for _, batch := range []int{1, 8} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) { benchDecode(b, m, batch, 32, 8) })
	}
}

// BenchmarkTrainTiny: forward + backward over a batch of 8 sequences of 160 tokens.
func BenchmarkTrainTiny(b *testing.B) {
	tensortest.LockThread(b)
	m := benchModel(b, "tiny", 320)
	if err := m.SetTrainable(true); err != nil {
		b.Fatal(err)
	}
	seqs := make([][]int32, 8)
	for i := range seqs {
		seqs[i] = make([]int32, 160)
		for j := range seqs[i] {
			seqs[i][j] = int32((i*11 + j*3) % 320)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := m.Score(seqs, ScoreOptions{Entropy: true})
		if err != nil {
			b.Fatal(err)
		}
		loss := s.LogProbs.MustMean(gotch.Float, false)
		if err := loss.Backward(); err != nil {
			b.Fatal(err)
		}
		loss.MustDrop()
		s.Close()
	}
	b.ReportMetric(float64(b.N*8*160)/b.Elapsed().Seconds(), "tokens/s")
}

// benchThreads is libtorch's thread count in benchmarks: OMP_NUM_THREADS, else every core.
func benchThreads() int { return tensor.ThreadsFromEnv(runtime.NumCPU()) }
