package model

import (
	"math"
	"slices"
	"sort"
	"strings"
	"testing"
	"tsd/tensor"
	"tsd/tensor/tensortest"

	"github.com/sugarme/gotch"
)

// letters decodes token id i as the letter 'a'+i%26, so tests can place stop strings.
type letters struct{}

func (letters) Decode(ids []int32) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteByte(byte('a' + id%26))
	}
	return b.String()
}

func generate(t *testing.T, m *Qwen2, prompts [][]int32, opts SampleOptions, dec Decoder) []Completion {
	t.Helper()
	c, err := m.Prefill(prompts)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	out, err := m.Generate(c, opts, dec)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSampleLogProbsAndValues: the recorded log-probs and values are those a full scoring pass of
// the finished sequence gives.
func TestSampleLogProbsAndValues(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	prompt := readGolden(t)[1].IDs
	out := generate(t, m, [][]int32{prompt}, SampleOptions{Temperature: 1, MaxNewTokens: 12, Seed: 7, Values: true}, nil)[0]
	if len(out.Tokens) != 12 || len(out.LogProbs) != 12 || len(out.Values) != 12 || len(out.Hidden) != m.cfg.HiddenSize {
		t.Fatalf("got %d tokens, %d log-probs, %d values, hidden %d", len(out.Tokens), len(out.LogProbs), len(out.Values), len(out.Hidden))
	}
	seq := append(append([]int32{}, prompt...), out.Tokens...)
	s, err := m.Score([][]int32{seq}, ScoreOptions{NoGrad: true})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	lp, vals := tensor.Float32s(s.LogProbs), tensor.Float32s(s.Values) // position t scores token t+1
	P := len(prompt)
	for i := range out.Tokens {
		if d := math.Abs(float64(lp[P-1+i] - out.LogProbs[i])); d > 1e-4 {
			t.Fatalf("token %d: sampled log-prob %v, scored %v", i, out.LogProbs[i], lp[P-1+i])
		}
		if i+1 < len(out.Tokens) { // the value after token i is the value before token i+1
			if d := math.Abs(float64(vals[P+i] - out.Values[i])); d > 1e-4 {
				t.Fatalf("value after token %d: sampled %v, scored %v", i, out.Values[i], vals[P+i])
			}
		}
	}
}

// TestSampleDistribution: sampled first tokens follow softmax(logits/T). Tokens are grouped, in order
// of probability, into groups of at least 5% mass; each group's frequency over 4,000 draws must lie
// within 4 standard errors of its probability.
func TestSampleDistribution(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	prompt := readGolden(t)[0].IDs
	const n, temp = 4000, 3.0
	logits, err := m.Logits([][]int32{prompt})
	if err != nil {
		t.Fatal(err)
	}
	probs := softmax(logits[0][len(prompt)-1], temp)
	prompts := make([][]int32, n)
	for i := range prompts {
		prompts[i] = prompt
	}
	counts := make([]int, len(probs))
	for _, c := range generate(t, m, prompts, SampleOptions{Temperature: temp, MaxNewTokens: 1, Seed: 3}, nil) {
		counts[c.Tokens[0]]++
	}
	order := make([]int, len(probs))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return probs[order[a]] > probs[order[b]] })
	groups := 0
	for i := 0; i < len(order); {
		p, k := 0.0, 0
		for ; i < len(order) && p < 0.05; i++ {
			p += probs[order[i]]
			k += counts[order[i]]
		}
		groups++
		freq, se := float64(k)/n, math.Sqrt(p*(1-p)/n)
		if math.Abs(freq-p) > 4*se {
			t.Errorf("group %d: frequency %.4f, probability %.4f (±%.4f)", groups, freq, p, 4*se)
		}
	}
	if groups < 8 {
		t.Fatalf("only %d groups: the test checks too little", groups)
	}
}

// TestSampleFilters: top-k 1 is greedy; with top-p, only tokens inside the nucleus appear.
func TestSampleFilters(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	prompt := readGolden(t)[2].IDs
	greedy := generate(t, m, [][]int32{prompt}, SampleOptions{MaxNewTokens: 6}, nil)[0].Tokens
	topk1 := generate(t, m, [][]int32{prompt}, SampleOptions{Temperature: 1.5, TopK: 1, MaxNewTokens: 6, Seed: 9}, nil)[0].Tokens
	if !slices.Equal(greedy, topk1) {
		t.Errorf("top-k 1 gave %v, greedy %v", topk1, greedy)
	}
	logits, err := m.Logits([][]int32{prompt})
	if err != nil {
		t.Fatal(err)
	}
	probs := softmax(logits[0][len(prompt)-1], 1)
	const p = 0.5
	nucleus := map[int32]bool{}
	for mass := 0.0; mass < p; {
		best := -1
		for id, q := range probs {
			if !nucleus[int32(id)] && (best < 0 || q > probs[best]) {
				best = id
			}
		}
		nucleus[int32(best)] = true
		mass += probs[best]
	}
	prompts := make([][]int32, 400)
	for i := range prompts {
		prompts[i] = prompt
	}
	for _, c := range generate(t, m, prompts, SampleOptions{Temperature: 1, TopP: p, MaxNewTokens: 1, Seed: 5}, nil) {
		if !nucleus[c.Tokens[0]] {
			t.Fatalf("top-p %.1f sampled token %d outside the nucleus %v", p, c.Tokens[0], nucleus)
		}
	}
}

// TestSampleStops: rows stop at EOS or a stop string; a batch where rows stop at different times
// (and get compacted away) decodes each row exactly as it decodes alone.
func TestSampleStops(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	var prompts [][]int32
	for _, c := range readGolden(t) {
		prompts = append(prompts, c.IDs, c.IDs[:1+len(c.IDs)/2])
	}
	long := SampleOptions{MaxNewTokens: 10}
	free := generate(t, m, prompts, long, nil)
	// Stop each row at the letter its third greedy token decodes to.
	var stops []string
	for _, c := range free {
		stops = append(stops, letters{}.Decode(c.Tokens[2:3]))
	}
	opts := SampleOptions{MaxNewTokens: 10, Stop: stops[4:5], EOS: []int32{free[1].Tokens[1]}}
	batch := generate(t, m, prompts, opts, letters{})
	for i, p := range prompts {
		alone := generate(t, m, [][]int32{p}, opts, letters{})[0]
		if !slices.Equal(batch[i].Tokens, alone.Tokens) || batch[i].Stop != alone.Stop {
			t.Errorf("row %d: batch %v (stop %d), alone %v (stop %d)", i, batch[i].Tokens, batch[i].Stop, alone.Tokens, alone.Stop)
		}
		if batch[i].Stop == StopLength && len(batch[i].Tokens) != 10 {
			t.Errorf("row %d stopped after %d tokens without a reason", i, len(batch[i].Tokens))
		}
	}
	stopped := map[StopReason]int{}
	for i, c := range batch {
		n, why := firstStop(free[i].Tokens, opts)
		if !slices.Equal(c.Tokens, free[i].Tokens[:n]) || c.Stop != why {
			t.Errorf("row %d: %v stop %d, want %v stop %d", i, c.Tokens, c.Stop, free[i].Tokens[:n], why)
		}
		stopped[c.Stop]++
	}
	if stopped[StopEOS] == 0 || stopped[StopString] == 0 {
		t.Fatalf("stops %v: the test must see both EOS and stop-string stops", stopped)
	}
}

func TestSampleSeeded(t *testing.T) {
	tensortest.LockThread(t)
	m := loadTiny(t, Options{Device: gotch.CPU})
	prompt := [][]int32{readGolden(t)[1].IDs}
	opts := SampleOptions{Temperature: 6, MaxNewTokens: 16, Seed: 42}
	a := generate(t, m, prompt, opts, nil)[0].Tokens
	b := generate(t, m, prompt, opts, nil)[0].Tokens
	opts.Seed = 43
	c := generate(t, m, prompt, opts, nil)[0].Tokens
	if !slices.Equal(a, b) {
		t.Errorf("same seed, different samples: %v vs %v", a, b)
	}
	if slices.Equal(a, c) {
		t.Errorf("seeds 42 and 43 gave the same 16 tokens %v", a)
	}
}

func softmax(logits []float32, temp float64) []float64 {
	mx := math.Inf(-1)
	for _, l := range logits {
		mx = math.Max(mx, float64(l)/temp)
	}
	out := make([]float64, len(logits))
	sum := 0.0
	for i, l := range logits {
		out[i] = math.Exp(float64(l)/temp - mx)
		sum += out[i]
	}
	for i := range out {
		out[i] /= sum
	}
	return out
}

// firstStop is the plain statement of the stopping rule: the first token that is EOS or completes a
// stop string ends the row.
func firstStop(toks []int32, opts SampleOptions) (int, StopReason) {
	for i := range toks {
		for _, e := range opts.EOS {
			if toks[i] == e {
				return i + 1, StopEOS
			}
		}
		for _, s := range opts.Stop {
			if strings.Contains(letters{}.Decode(toks[:i+1]), s) {
				return i + 1, StopString
			}
		}
	}
	return len(toks), StopLength
}
