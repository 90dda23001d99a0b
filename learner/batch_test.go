package learner

import (
	"errors"
	"math"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

var testLimits = limits{vocab: testVocab, maxLen: 32}

func validRollout(algo tsdv1.Algo, samples int) *tsdv1.Rollout {
	r := &tsdv1.Rollout{ActorId: "a", Seq: 1, PromptIds: []int32{1, 2, 3}, Algo: algo}
	for i := 0; i < samples; i++ {
		r.Samples = append(r.Samples, &tsdv1.Sample{
			CompletionIds: []int32{4, 5, int32(6 + i)},
			Logprobs:      []float32{-0.5, -1, -2},
			Values:        []float32{0.1, 0.2, 0.3},
			Reward:        float32(i%3) - 1,
		})
	}
	return r
}

func TestCheckRollout(t *testing.T) {
	mcts := DefaultConfig()
	group := DefaultConfig()
	group.Algo, group.GroupSize = AlgoCISPO, 4
	anyGroup := group
	anyGroup.GroupSize, anyGroup.GlobalBatch = 0, 4
	cases := []struct {
		name string
		cfg  Config
		r    *tsdv1.Rollout
		edit func(r *tsdv1.Rollout)
		ok   bool
	}{
		{"valid mcts", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), nil, true},
		{"valid group", group, validRollout(tsdv1.Algo_ALGO_GROUP, 4), nil, true},
		{"valid group of any size", anyGroup, validRollout(tsdv1.Algo_ALGO_GROUP, 3), nil, true},
		{"no values is fine", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Values = nil }, true},
		{"nil rollout", mcts, nil, nil, false},
		{"wrong algorithm", mcts, validRollout(tsdv1.Algo_ALGO_BEST_OF_N, 1), nil, false},
		{"unspecified algorithm", mcts, validRollout(tsdv1.Algo_ALGO_UNSPECIFIED, 1), nil, false},
		{"mcts with two samples", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 2), nil, false},
		{"mcts with none", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 0), nil, false},
		{"group of the wrong size", group, validRollout(tsdv1.Algo_ALGO_GROUP, 3), nil, false},
		{"group of one", anyGroup, validRollout(tsdv1.Algo_ALGO_GROUP, 1), nil, false},
		{"group over the batch", anyGroup, validRollout(tsdv1.Algo_ALGO_GROUP, 5), nil, false},
		{"empty prompt", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.PromptIds = nil }, false},
		{"prompt id past vocab", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.PromptIds[1] = testVocab }, false},
		{"negative id", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].CompletionIds[0] = -1 }, false},
		{"nil sample", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0] = nil }, false},
		{"empty completion", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) {
			r.Samples[0].CompletionIds, r.Samples[0].Logprobs, r.Samples[0].Values = nil, nil, nil
		}, false},
		{"too long", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.PromptIds = make([]int32, 30) }, false},
		{"short logprobs", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Logprobs = r.Samples[0].Logprobs[1:] }, false},
		{"long values", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Values = append(r.Samples[0].Values, 0) }, false},
		{"NaN logprob", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Logprobs[2] = float32(math.NaN()) }, false},
		{"-inf logprob", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Logprobs[0] = float32(math.Inf(-1)) }, false},
		{"positive logprob", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Logprobs[0] = 0.5 }, false},
		{"infinite value", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Values[1] = float32(math.Inf(1)) }, false},
		{"reward above 1", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Reward = 1.5 }, false},
		{"NaN reward", mcts, validRollout(tsdv1.Algo_ALGO_MCTS, 1), func(r *tsdv1.Rollout) { r.Samples[0].Reward = float32(math.NaN()) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.edit != nil {
				c.edit(c.r)
			}
			err := c.cfg.checkRollout(c.r, testLimits)
			if c.ok && err != nil {
				t.Fatalf("rejected: %v", err)
			}
			if !c.ok && !errors.Is(err, ErrRollout) {
				t.Fatalf("got %v, want ErrRollout", err)
			}
		})
	}
}

func TestFlatten(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Algo, cfg.GroupSize, cfg.GlobalBatch = AlgoGRPO, 3, 6
	a, b := validRollout(tsdv1.Algo_ALGO_GROUP, 3), validRollout(tsdv1.Algo_ALGO_GROUP, 3)
	b.PromptIds = []int32{9}
	samples, err := cfg.flatten([]*tsdv1.Rollout{a, b}, testLimits)
	if err != nil {
		t.Fatal(err)
	}
	if len(samples) != 6 || len(samples[0].ids) != 4 || samples[0].prompt != 1 {
		t.Fatalf("samples not ordered shortest first: %+v", samples[0])
	}
	// Rewards −1, 0, 1 in each group: advantages ≈ −1, 0, 1 whatever the order.
	for _, s := range samples {
		if !near(s.groupAdv, s.reward/(1+groupEps), 1e-12) {
			t.Fatalf("reward %v has group advantage %v", s.reward, s.groupAdv)
		}
	}
	if _, err := cfg.flatten(nil, testLimits); !errors.Is(err, ErrRollout) {
		t.Fatalf("no rollouts: got %v", err)
	}
	c := validRollout(tsdv1.Algo_ALGO_GROUP, 3)
	if _, err := cfg.flatten([]*tsdv1.Rollout{a, b, c}, testLimits); !errors.Is(err, ErrRollout) {
		t.Fatalf("9 samples for a batch of 6: got %v", err)
	}
}

// FuzzCheckRollout: any rollout built from arbitrary bytes is either rejected with ErrRollout or
// satisfies everything the trainer relies on.
func FuzzCheckRollout(f *testing.F) {
	f.Add([]byte{3, 1, 2, 3, 2, 4, 5, 0x80, 0x90, 0x10, 1})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		next := func() int {
			if len(b) == 0 {
				return 0
			}
			x := int(b[0])
			b = b[1:]
			return x
		}
		r := &tsdv1.Rollout{Algo: tsdv1.Algo(next() % 4)}
		for i, n := 0, next()%40; i < n; i++ {
			r.PromptIds = append(r.PromptIds, int32(next())-10)
		}
		for s, ns := 0, next()%3; s < ns; s++ {
			smp := &tsdv1.Sample{Reward: float32(next()-128) / 100}
			for i, n := 0, next()%10; i < n; i++ {
				smp.CompletionIds = append(smp.CompletionIds, int32(next())-10)
			}
			for i, n := 0, next()%10; i < n; i++ {
				smp.Logprobs = append(smp.Logprobs, -float32(next())/10+0.5)
			}
			r.Samples = append(r.Samples, smp)
		}
		cfg := DefaultConfig()
		err := cfg.checkRollout(r, testLimits)
		if err != nil {
			if !errors.Is(err, ErrRollout) {
				t.Fatalf("error %v does not wrap ErrRollout", err)
			}
			return
		}
		s := r.Samples[0]
		if len(r.Samples) != 1 || len(r.PromptIds) == 0 || len(s.CompletionIds) == 0 || len(s.Logprobs) != len(s.CompletionIds) ||
			len(r.PromptIds)+len(s.CompletionIds) > testLimits.maxLen || s.Reward < -1 || s.Reward > 1 {
			t.Fatalf("accepted a rollout the trainer cannot use: %v", r)
		}
		for _, id := range append(append([]int32{}, r.PromptIds...), s.CompletionIds...) {
			if id < 0 || id >= testVocab {
				t.Fatalf("accepted token id %d", id)
			}
		}
	})
}
