package learner

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	"github.com/sugarme/gotch"
	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rolloutlog"
)

// Admission settings of the fuzz target.
const (
	fuzzActor     = "a1"
	fuzzMaxLag    = 2
	fuzzMaxTokens = 12
)

// FuzzAdmit drives the learner's intake (Ingest.Admit with the trainer's CheckRollout, then the
// write-ahead log) with arbitrary rollouts decoded from the fuzz bytes. It must never panic, and
// whatever it admits must pass an independent, plainly written check: matching lengths, finite
// numbers, ids in the vocabulary, this stream's actor, a version within the lag, a seq ≥ 1. An
// admitted rollout must then be written (or be a duplicate), and read back unchanged.
func FuzzAdmit(f *testing.F) {
	good := &tsdv1.Rollout{
		ActorId: fuzzActor, Seq: 1, PolicyVersion: 3, PromptIds: []int32{1, 2, 3}, Algo: tsdv1.Algo_ALGO_MCTS,
		Samples: []*tsdv1.Sample{{CompletionIds: []int32{4, 5}, Logprobs: []float32{-1, -2}, Values: []float32{0.5, -0.5}, Reward: 1}},
	}
	seeds := []func(*tsdv1.Rollout){
		func(*tsdv1.Rollout) {},
		func(r *tsdv1.Rollout) { r.Samples[0].Values = nil },
		func(r *tsdv1.Rollout) { r.Samples[0].Logprobs[0] = float32(math.NaN()) },
		func(r *tsdv1.Rollout) { r.Samples[0].Values[1] = float32(math.Inf(-1)) },
		func(r *tsdv1.Rollout) { r.Samples[0].Logprobs = r.Samples[0].Logprobs[:1] },
		func(r *tsdv1.Rollout) { r.PolicyVersion = 9 },
		func(r *tsdv1.Rollout) { r.Samples = append(r.Samples, r.Samples[0]) },
		func(r *tsdv1.Rollout) { r.Samples[0].CompletionIds[0] = testVocab },
	}
	for i, edit := range seeds {
		r := proto.Clone(good).(*tsdv1.Rollout)
		r.Seq = uint64(i + 1)
		edit(r)
		b, err := proto.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint8(3), true)
	}
	f.Add([]byte{}, uint8(0), false)

	tr, err := NewTrainer(initModel(f, 1, gotch.Float), nil, fuzzTrainConfig())
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(tr.Close)
	log, err := rolloutlog.Open(filepath.Join(f.TempDir(), "wal"), rolloutlog.Options{NoSync: true, Logger: discardLog()})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { log.Close() })
	in := NewIngest(log, tr.CheckRollout, fuzzMaxLag, fuzzMaxTokens)
	lim := limits{vocab: testVocab, maxLen: tinyCfg(f).MaxPositionEmbeddings}

	f.Fuzz(func(t *testing.T, raw []byte, version uint8, own bool) {
		r := &tsdv1.Rollout{}
		if err := proto.Unmarshal(raw, r); err != nil {
			return
		}
		if own { // most random rollouts would stop at the actor check; let half of them past it
			r.ActorId = fuzzActor
		}
		in.SetVersion(uint64(version))
		err := in.Admit(fuzzActor, r)
		if err != nil {
			return
		}
		if problem := admissible(r, uint64(version), lim); problem != "" {
			t.Fatalf("admitted a rollout with %s: %v", problem, r)
		}
		done, err := in.Submit(context.Background(), r)
		if err != nil {
			t.Fatalf("the log refused an admitted rollout: %v", err)
		}
		res := <-done
		if res.Err != nil {
			t.Fatalf("writing an admitted rollout: %v", res.Err)
		}
		if res.Entry.Duplicate {
			return
		}
		recs, err := log.Read(res.Entry.Index, 1)
		if err != nil || len(recs) != 1 || !proto.Equal(recs[0].Rollout, r) {
			t.Fatalf("read back %v (%v), wrote %v", recs, err, r)
		}
	})
}

// fuzzTrainConfig is an MCTS learner that takes up to 4 samples a step.
func fuzzTrainConfig() Config {
	c := DefaultConfig()
	c.KLCoef, c.GlobalBatch, c.MicroBatch = 0, 4, 4
	return c
}

// admissible is the intake's contract written out plainly, independently of Admit and
// checkRollout: "" if r may be trained on, else what is wrong.
func admissible(r *tsdv1.Rollout, version uint64, lim limits) string {
	finite := func(x float32) bool { return !math.IsNaN(float64(x)) && !math.IsInf(float64(x), 0) }
	inVocab := func(ids []int32) bool {
		for _, id := range ids {
			if id < 0 || int(id) >= lim.vocab {
				return false
			}
		}
		return true
	}
	switch {
	case r.GetActorId() != fuzzActor:
		return "another actor's id"
	case r.GetSeq() == 0:
		return "seq 0"
	case r.GetPolicyVersion() > version || version-r.GetPolicyVersion() > fuzzMaxLag:
		return "a version outside the lag"
	case r.GetAlgo() != tsdv1.Algo_ALGO_MCTS || len(r.GetSamples()) != 1:
		return "not one MCTS sample"
	case len(r.GetPromptIds()) == 0 || !inVocab(r.GetPromptIds()):
		return "a bad prompt"
	}
	s := r.GetSamples()[0]
	n := len(s.GetCompletionIds())
	switch {
	case n == 0 || n > fuzzMaxTokens || len(r.GetPromptIds())+n > lim.maxLen || !inVocab(s.GetCompletionIds()):
		return "a bad completion"
	case len(s.GetLogprobs()) != n:
		return "log-probs not matching the completion"
	case len(s.GetValues()) != 0 && len(s.GetValues()) != n:
		return "values not matching the completion"
	case !finite(s.GetReward()) || math.Abs(float64(s.GetReward())) > 1:
		return "a bad reward"
	}
	for _, x := range s.GetLogprobs() {
		if !finite(x) || x > 1e-4 {
			return "a non-finite or positive log-prob"
		}
	}
	for _, x := range s.GetValues() {
		if !finite(x) {
			return "a non-finite value"
		}
	}
	return ""
}
