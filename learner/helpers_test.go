package learner

import (
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/model"
	tsdv1 "tsd/proto/tsd/v1"
)

const testVocab = 64

// tinyCfg is a two-layer model small enough that a training step takes milliseconds.
func tinyCfg(t testing.TB) model.Config {
	t.Helper()
	cfg, err := model.Preset("tiny", testVocab)
	if err != nil {
		t.Fatal(err)
	}
	cfg.HiddenSize, cfg.IntermediateSize, cfg.NumHiddenLayers = 32, 48, 2
	return cfg
}

// initModel makes a tiny model; the same seed gives the same weights. The caller closes it (a
// Trainer closes its policy).
func initModel(t testing.TB, seed int64, dt gotch.DType) *model.Qwen2 {
	t.Helper()
	m, err := model.Init(tinyCfg(t), seed, model.Options{Device: gotch.CPU, DType: dt})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// refModel is initModel closed at the end of the test.
func refModel(t testing.TB, seed int64) *model.Qwen2 {
	m := initModel(t, seed, gotch.Float)
	t.Cleanup(m.Close)
	return m
}

// testConfig is the source's config for algo with a learning rate a tiny model notices in 50 steps.
func testConfig(algo, loss string) Config {
	c := DefaultConfig()
	c.Algo, c.PolicyLoss = algo, loss
	c.GroupSize, c.MicroBatch = 4, 3
	c.Optim.LR, c.Optim.DecaySteps, c.Optim.MaxGradNorm = 3e-3, 0, 1
	return c
}

// protoAlgo is the rollout algorithm an actor would send for a learner algorithm.
func protoAlgo(algo string) tsdv1.Algo { return Config{Algo: algo}.wantAlgo() }

// sampleRollouts has m complete nPrompts random prompts, samples times each, at temperature 1,
// recording behaviour log-probs as an actor does. The dense reward is the share of even tokens in
// the completion, mapped to [−1, 1]; with sign it is ±1 (for single-trajectory algorithms, so
// that every token of a rewarded sample has A = 1 − V > 0).
func sampleRollouts(t testing.TB, m *model.Qwen2, algo tsdv1.Algo, nPrompts, samples int, seed uint64, sign bool) []*tsdv1.Rollout {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var rows [][]int32
	var prompts [][]int32
	for p := 0; p < nPrompts; p++ {
		prompt := make([]int32, 3+rng.IntN(6))
		for i := range prompt {
			prompt[i] = int32(1 + rng.IntN(testVocab-1))
		}
		prompts = append(prompts, prompt)
		for s := 0; s < samples; s++ {
			rows = append(rows, prompt)
		}
	}
	c, err := m.Prefill(rows)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := m.Generate(c, model.SampleOptions{Temperature: 1, MaxNewTokens: 12, EOS: []int32{0}, Seed: int64(seed)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var rollouts []*tsdv1.Rollout
	for p, prompt := range prompts {
		r := &tsdv1.Rollout{ActorId: "test", Seq: uint64(p + 1), PromptIds: prompt, Algo: algo}
		for _, comp := range out[p*samples : (p+1)*samples] {
			even := 0
			for _, id := range comp.Tokens {
				if id%2 == 0 {
					even++
				}
			}
			reward := 2*float32(even)/float32(len(comp.Tokens)) - 1
			if sign {
				reward = map[bool]float32{true: 1, false: -1}[reward >= 0]
			}
			r.Samples = append(r.Samples, &tsdv1.Sample{
				CompletionIds: comp.Tokens, Logprobs: comp.LogProbs, Reward: reward, Finished: comp.Stop == model.StopEOS,
			})
		}
		rollouts = append(rollouts, r)
	}
	return rollouts
}

// weightBytes is every weight's memory, for bit-for-bit comparisons.
func weightBytes(m *model.Qwen2) map[string][]byte {
	out := map[string][]byte{}
	for _, p := range m.Params() {
		out[p.Name] = tensorBytes(p.Tensor)
	}
	return out
}

func tensorBytes(x *ts.Tensor) []byte {
	c := x.MustContiguous(false)
	defer c.MustDrop()
	n := int(c.Numel()) * int(c.DType().Size())
	return append([]byte(nil), unsafe.Slice((*byte)(c.MustDataPtr()), n)...)
}
