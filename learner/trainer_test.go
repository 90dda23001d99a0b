package learner

import (
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"tsd/model"
	"tsd/optim"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/tensor"
	"tsd/tensor/tensortest"
)

func newTrainer(t testing.TB, cfg Config, seed int64) *Trainer {
	t.Helper()
	tr, err := NewTrainer(initModel(t, seed, gotch.Float), refModel(t, seed), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

func step(t testing.TB, tr *Trainer, rollouts []*tsdv1.Rollout) StepStats {
	t.Helper()
	st, err := tr.Step(rollouts)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// tokenLogProbs returns, per sample of each rollout, log π(token) of its completion tokens under m.
func tokenLogProbs(t testing.TB, m *model.Qwen2, rollouts []*tsdv1.Rollout) [][][]float64 {
	t.Helper()
	out := make([][][]float64, len(rollouts))
	for i, r := range rollouts {
		for _, s := range r.Samples {
			out[i] = append(out[i], scoreOne(t, m, r.PromptIds, s.CompletionIds, false).logp)
		}
	}
	return out
}

// scored are one sequence's completion positions of model.Scores, as float64.
type scored struct{ logp, value, entropy []float64 }

// scoreOne scores prompt+completion alone (no padding) and keeps the completion's positions.
func scoreOne(t testing.TB, m *model.Qwen2, prompt, completion []int32, entropy bool) scored {
	t.Helper()
	ids := append(append([]int32{}, prompt...), completion...)
	s, err := m.Score([][]int32{ids}, model.ScoreOptions{NoGrad: true, Entropy: entropy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	P, L := len(prompt), len(completion)
	out := scored{logp: tensor.Float64s(s.LogProbs)[P-1 : P-1+L], value: tensor.Float64s(s.Values)[P-1 : P-1+L]}
	if entropy {
		out.entropy = tensor.Float64s(s.Entropy)[P-1 : P-1+L]
	}
	return out
}

// TestFiftyStepsLearn: on a fixed batch sampled from a tiny model, 50 steps lower the loss and raise
// the log-probability of the tokens with a positive advantage, for every algorithm.
//
// "The loss" is the batch objective with the advantages frozen at their initial values (A = R − V
// moves as the value head learns, which would make the policy term a moving target) and CISPO's
// policy term in its importance-sampled form −min(r, 1+ε_high)·A, whose gradient CISPO follows: the
// surrogate −sg(w)·A·log π it differentiates has no meaningful value across steps, since its weight
// grows with the ratio it is pushing up. The reported losses are logged for reference.
func TestFiftyStepsLearn(t *testing.T) {
	tensortest.LockThread(t)
	cases := []struct {
		name, algo, loss string
		prompts, samples int
	}{
		{"mcts with cispo", AlgoMCTS, LossCISPO, 8, 1},
		{"mcts with ppo", AlgoMCTS, LossPPO, 8, 1},
		{"best-of-n", AlgoBestOfN, LossCISPO, 8, 1},
		{"cispo groups", AlgoCISPO, "", 4, 4},
		{"grpo groups", AlgoGRPO, "", 4, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensortest.LockThread(t)
			cfg := testConfig(c.algo, c.loss)
			tr := newTrainer(t, cfg, 1)
			ref := refModel(t, 1)
			rollouts := sampleRollouts(t, tr.Policy(), protoAlgo(c.algo), c.prompts, c.samples, 2, !cfg.group())
			adv0 := advantagesAt(t, cfg, tr.Policy(), rollouts)
			lossBefore := objective(t, cfg, tr.Policy(), ref, rollouts, adv0)
			before := meanOver(tokenLogProbs(t, tr.Policy(), rollouts), adv0, 1)
			beforeNeg := meanOver(tokenLogProbs(t, tr.Policy(), rollouts), adv0, -1)
			first := step(t, tr, rollouts)
			last := first
			for i := 1; i < 50; i++ {
				last = step(t, tr, rollouts)
			}
			lossAfter := objective(t, cfg, tr.Policy(), ref, rollouts, adv0)
			after := meanOver(tokenLogProbs(t, tr.Policy(), rollouts), adv0, 1)
			afterNeg := meanOver(tokenLogProbs(t, tr.Policy(), rollouts), adv0, -1)
			t.Logf("loss %.4f → %.4f (reported %.4f → %.4f); mean log-prob of tokens with A > 0 %.3f → %.3f, A < 0 %.3f → %.3f",
				lossBefore, lossAfter, first.Loss.Total, last.Loss.Total, before, after, beforeNeg, afterNeg)
			if !(lossAfter < lossBefore) {
				t.Errorf("loss did not fall: %v → %v", lossBefore, lossAfter)
			}
			if !(after > before) {
				t.Errorf("log-prob of positive-advantage tokens did not rise: %v → %v", before, after)
			}
			if last.Step != 50 || tr.Steps() != 50 {
				t.Errorf("step counter %d / %d, want 50", last.Step, tr.Steps())
			}
		})
	}
}

// advantagesAt is every completion token's advantage under m: R − V(s_t) or the group advantage.
func advantagesAt(t *testing.T, cfg Config, m *model.Qwen2, rollouts []*tsdv1.Rollout) [][][]float64 {
	out := make([][][]float64, len(rollouts))
	for i, r := range rollouts {
		rewards := make([]float64, len(r.Samples))
		for j, s := range r.Samples {
			rewards[j] = float64(s.Reward)
		}
		group := groupAdvantages(rewards)
		for j, s := range r.Samples {
			v := scoreOne(t, m, r.PromptIds, s.CompletionIds, false).value
			adv := make([]float64, len(v))
			for k := range adv {
				adv[k] = rewards[j] - v[k]
				if cfg.group() {
					adv[k] = group[j]
				}
			}
			out[i] = append(out[i], adv)
		}
	}
	return out
}

// objective is the batch loss of policy with frozen advantages adv (see TestFiftyStepsLearn).
func objective(t *testing.T, cfg Config, policy, ref *model.Qwen2, rollouts []*tsdv1.Rollout, adv [][][]float64) float64 {
	total, n := 0.0, 0
	for _, r := range rollouts {
		n += len(r.Samples)
	}
	for i, r := range rollouts {
		for j, s := range r.Samples {
			p := scoreOne(t, policy, r.PromptIds, s.CompletionIds, false)
			q := scoreOne(t, ref, r.PromptIds, s.CompletionIds, false)
			w := 1 / float64(len(s.CompletionIds)*n)
			for k := range s.CompletionIds {
				A, R := adv[i][j][k], float64(s.Reward)
				ratio := math.Exp(p.logp[k] - float64(s.Logprobs[k]))
				pol := -math.Min(ratio, 1+cfg.EpsHigh) * A
				if cfg.loss() == LossPPO {
					pol = -math.Min(ratio*A, math.Min(math.Max(ratio, 1-cfg.ClipEps), 1+cfg.ClipEps)*A)
				}
				rho := math.Exp(q.logp[k] - p.logp[k])
				term := pol + cfg.KLCoef*(rho-1-math.Log(rho))
				if cfg.trainsValue() {
					term += cfg.ValueCoef * (p.value[k] - R) * (p.value[k] - R)
				}
				total += w * term
			}
		}
	}
	return total
}

// meanOver averages the log-probs of the tokens whose advantage has the given sign.
func meanOver(lp, adv [][][]float64, sign float64) float64 {
	sum, n := 0.0, 0
	for i := range lp {
		for j := range lp[i] {
			for k, x := range lp[i][j] {
				if adv[i][j][k]*sign > 0 {
					sum += x
					n++
				}
			}
		}
	}
	return sum / float64(n)
}

// TestStepMatchesDefinition: the stats of a step equal the loss written out per token in float64
// from the model's own scores of each sequence alone (no batching, no padding), with stale
// behaviour log-probs so that some ratios leave the trust region.
func TestStepMatchesDefinition(t *testing.T) {
	tensortest.LockThread(t)
	cases := []struct {
		name, algo, loss string
		prompts, samples int
	}{
		{"mcts with ppo", AlgoMCTS, LossPPO, 5, 1},
		{"mcts with cispo", AlgoMCTS, LossCISPO, 5, 1},
		{"cispo groups", AlgoCISPO, "", 2, 4},
		{"grpo groups", AlgoGRPO, "", 2, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tensortest.LockThread(t)
			cfg := testConfig(c.algo, c.loss)
			cfg.EntropyCoef, cfg.EpsHigh = 0.01, 0.3 // small ε_high so CISPO clips some weights
			tr := newTrainer(t, cfg, 3)
			ref := refModel(t, 3)
			rollouts := sampleRollouts(t, tr.Policy(), protoAlgo(c.algo), c.prompts, c.samples, 4, !cfg.group())
			stale(rollouts, 5)
			want := definition(t, cfg, tr.Policy(), ref, rollouts)
			got := step(t, tr, rollouts)
			checks := []struct {
				name      string
				got, want float64
			}{
				{"total", got.Loss.Total, want.Loss.Total},
				{"policy", got.Loss.Policy, want.Loss.Policy},
				{"value", got.Loss.Value, want.Loss.Value},
				{"kl", got.Loss.KL, want.Loss.KL},
				{"entropy", got.Loss.Entropy, want.Loss.Entropy},
				{"clip fraction", got.ClipFraction, want.ClipFraction},
				{"advantage mean", got.AdvantageMean, want.AdvantageMean},
				{"reward mean", got.RewardMean, want.RewardMean},
				{"tokens", float64(got.Tokens), float64(want.Tokens)},
			}
			for _, ch := range checks {
				if !near(ch.got, ch.want, 2e-5) {
					t.Errorf("%s: step says %.8g, definition %.8g", ch.name, ch.got, ch.want)
				}
			}
			if want.ClipFraction == 0 {
				t.Error("no token was clipped; the staleness did not exercise clipping")
			}
		})
	}
}

// stale perturbs the behaviour log-probs as if the actor had used older weights.
func stale(rollouts []*tsdv1.Rollout, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, r := range rollouts {
		for _, s := range r.Samples {
			for i := range s.Logprobs {
				s.Logprobs[i] = float32(math.Min(float64(s.Logprobs[i])+rng.Float64()-0.5, 0))
			}
		}
	}
}

// definition computes a step's stats from the losses' defining equations, one sequence at a time.
func definition(t *testing.T, cfg Config, policy, ref *model.Qwen2, rollouts []*tsdv1.Rollout) StepStats {
	var st StepStats
	n := 0
	for _, r := range rollouts {
		n += len(r.Samples)
	}
	for _, r := range rollouts {
		rewards := make([]float64, len(r.Samples))
		for j, s := range r.Samples {
			rewards[j] = float64(s.Reward)
		}
		group := groupAdvantages(rewards)
		for j, s := range r.Samples {
			p := scoreOne(t, policy, r.PromptIds, s.CompletionIds, true)
			q := scoreOne(t, ref, r.PromptIds, s.CompletionIds, false)
			L := float64(len(s.CompletionIds))
			w := 1 / (L * float64(n))
			st.RewardMean += rewards[j] / float64(n)
			st.Tokens += len(s.CompletionIds)
			for i := range s.CompletionIds {
				A := rewards[j] - p.value[i] // R − V(s_t)
				if cfg.group() {
					A = group[j]
				}
				ratio := math.Exp(p.logp[i] - float64(s.Logprobs[i]))
				var pol float64
				clipped := false
				if cfg.loss() == LossPPO {
					pol = -math.Min(ratio*A, math.Min(math.Max(ratio, 1-cfg.ClipEps), 1+cfg.ClipEps)*A)
					clipped = ratio < 1-cfg.ClipEps || ratio > 1+cfg.ClipEps
				} else {
					pol = -math.Min(ratio, 1+cfg.EpsHigh) * A * p.logp[i]
					clipped = ratio > 1+cfg.EpsHigh
				}
				rho := math.Exp(q.logp[i] - p.logp[i])
				kl := rho - 1 - math.Log(rho)
				val := 0.0
				if !cfg.group() {
					val = (p.value[i] - rewards[j]) * (p.value[i] - rewards[j])
				}
				st.Loss.Policy += w * pol
				st.Loss.Value += w * val
				st.Loss.KL += w * kl
				st.Loss.Entropy += w * p.entropy[i]
				st.Loss.Total += w * (pol + cfg.ValueCoef*val + cfg.KLCoef*kl - cfg.EntropyCoef*p.entropy[i])
				st.AdvantageMean += w * A
				if clipped {
					st.ClipFraction += w
				}
			}
		}
	}
	return st
}

// TestMicroBatchInvariance: splitting a step into micro-batches of 1, 3 or all samples gives the
// same loss, gradient norm and update (to f32 rounding): accumulation reproduces the batch gradient.
func TestMicroBatchInvariance(t *testing.T) {
	tensortest.LockThread(t)
	var base StepStats
	var baseW map[string][]byte
	for i, mb := range []int{32, 1, 3} {
		cfg := testConfig(AlgoMCTS, LossPPO)
		cfg.MicroBatch = mb
		tr := newTrainer(t, cfg, 5)
		rollouts := sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_MCTS, 7, 1, 6, true)
		stale(rollouts, 7)
		st := step(t, tr, rollouts)
		w := weightBytes(tr.Policy())
		if i == 0 {
			base, baseW = st, w
			continue
		}
		for _, c := range [][2]float64{{st.Loss.Total, base.Loss.Total}, {st.GradNorm, base.GradNorm}, {st.ClipFraction, base.ClipFraction}} {
			if !near(c[0], c[1], 1e-5) {
				t.Errorf("micro-batch %d: %v, whole batch %v", mb, c[0], c[1])
			}
		}
		if maxDiff := maxWeightDiff(t, w, baseW); maxDiff > 1e-5 {
			t.Errorf("micro-batch %d: weights differ from the whole batch's by up to %g", mb, maxDiff)
		}
	}
}

func maxWeightDiff(t *testing.T, a, b map[string][]byte) float64 {
	worst := 0.0
	for name, x := range a {
		fa, fb := f32s(x), f32s(b[name])
		for i := range fa {
			worst = math.Max(worst, math.Abs(float64(fa[i])-float64(fb[i])))
		}
	}
	return worst
}

func f32s(b []byte) []float32 {
	out := make([]float32, len(b)/4)
	for i := range out {
		out[i] = math.Float32frombits(uint32(b[4*i]) | uint32(b[4*i+1])<<8 | uint32(b[4*i+2])<<16 | uint32(b[4*i+3])<<24)
	}
	return out
}

// TestGroupStepLeavesValueHead: group algorithms train no value head: its weights do not move and
// the optimizer holds no state for it.
func TestGroupStepLeavesValueHead(t *testing.T) {
	tensortest.LockThread(t)
	tr := newTrainer(t, testConfig(AlgoGRPO, ""), 8)
	before := weightBytes(tr.Policy())
	rollouts := sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_GROUP, 2, 4, 9, false)
	step(t, tr, rollouts)
	for name, b := range weightBytes(tr.Policy()) {
		same := string(b) == string(before[name])
		if model.IsValueHead(name) != same {
			t.Errorf("%s: unchanged = %v after a group step", name, same)
		}
	}
	for _, p := range tr.params {
		if model.IsValueHead(p.Name) {
			t.Errorf("optimizer trains %s", p.Name)
		}
	}
}

// TestStepRejectsBadRolloutsUnchanged: a bad rollout anywhere in the batch fails the whole step
// with ErrRollout before any weight changes.
func TestStepRejectsBadRolloutsUnchanged(t *testing.T) {
	tensortest.LockThread(t)
	tr := newTrainer(t, testConfig(AlgoMCTS, LossCISPO), 10)
	rollouts := sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_MCTS, 3, 1, 11, true)
	rollouts[2].Samples[0].Logprobs = rollouts[2].Samples[0].Logprobs[1:]
	before := weightBytes(tr.Policy())
	if _, err := tr.Step(rollouts); !errors.Is(err, ErrRollout) {
		t.Fatalf("got %v, want ErrRollout", err)
	}
	if _, err := tr.Step(nil); !errors.Is(err, ErrRollout) {
		t.Fatalf("no rollouts: got %v, want ErrRollout", err)
	}
	for name, b := range weightBytes(tr.Policy()) {
		if string(b) != string(before[name]) {
			t.Fatalf("%s changed on a rejected step", name)
		}
	}
	if tr.Steps() != 0 {
		t.Fatalf("Steps() = %d after rejected steps", tr.Steps())
	}
}

// TestNonFiniteGradientSkipsStep: a NaN in the value head poisons the loss; the step reports
// optim.ErrNonFinite and leaves every weight and the step counter as they were.
func TestNonFiniteGradientSkipsStep(t *testing.T) {
	tensortest.LockThread(t)
	tr := newTrainer(t, testConfig(AlgoMCTS, LossCISPO), 15)
	rollouts := sampleRollouts(t, tr.Policy(), tsdv1.Algo_ALGO_MCTS, 3, 1, 16, true)
	for _, p := range tr.Policy().Params() {
		if p.Name == "value_head.out.bias" {
			nan := ts.FloatScalar(math.NaN())
			tensor.NoGrad(func() { tensor.Check(p.Tensor.Fill_(nan)) })
			nan.MustDrop()
		}
	}
	before := weightBytes(tr.Policy())
	if _, err := tr.Step(rollouts); !errors.Is(err, optim.ErrNonFinite) {
		t.Fatalf("got %v, want optim.ErrNonFinite", err)
	}
	for name, b := range weightBytes(tr.Policy()) {
		if string(b) != string(before[name]) {
			t.Fatalf("%s changed on a skipped step", name)
		}
	}
	if tr.Steps() != 0 {
		t.Fatalf("Steps() = %d after a skipped step", tr.Steps())
	}
}

func TestNewTrainerErrors(t *testing.T) {
	tensortest.LockThread(t)
	otherCfg := tinyCfg(t)
	otherCfg.VocabSize = 80
	other, err := model.Init(otherCfg, 1, model.Options{Device: gotch.CPU})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	policy := refModel(t, 1) // not handed over: every case fails before taking ownership
	bad := DefaultConfig()
	bad.Algo = "ppo"
	cases := map[string]struct {
		policy, ref *model.Qwen2
		cfg         Config
	}{
		"nil policy":     {nil, refModel(t, 1), DefaultConfig()},
		"kl without ref": {policy, nil, DefaultConfig()},
		"ref vocab":      {policy, other, DefaultConfig()},
		"invalid config": {policy, refModel(t, 1), bad},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tensortest.LockThread(t)
			if _, err := NewTrainer(c.policy, c.ref, c.cfg); !errors.Is(err, ErrConfig) {
				t.Fatalf("got %v, want ErrConfig", err)
			}
		})
	}
}

// TestMetricsNames: the stable names are present exactly when their terms are computed.
func TestMetricsNames(t *testing.T) {
	full := StepStats{has: terms{value: true, kl: true, entropy: true}}.Metrics()
	for _, k := range []string{"step", "samples", "tokens", "lr", "grad/norm", "loss/policy", "loss/value", "loss/kl",
		"loss/entropy", "loss/total", "clip/fraction", "policy/approx_kl", "reward/mean", "advantage/mean", "value/mean"} {
		if _, ok := full[k]; !ok {
			t.Errorf("metric %s missing", k)
		}
	}
	bare := StepStats{}.Metrics()
	for _, k := range []string{"loss/value", "value/mean", "loss/kl", "loss/entropy"} {
		if _, ok := bare[k]; ok {
			t.Errorf("metric %s reported though not computed", k)
		}
	}
}
