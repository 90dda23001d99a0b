package learner

import (
	"math"
	"math/rand/v2"
	"testing"
)

func near(a, b, tol float64) bool { return math.Abs(a-b) <= tol*math.Max(1, math.Abs(b)) }

func TestGAE(t *testing.T) {
	cases := []struct {
		name          string
		values        []float64
		reward        float64
		gamma, lambda float64
		adv, ret      []float64
	}{
		// γ = λ = 1: A_t = R − V(s_t), G_t = R (the source's choice).
		{"seed", []float64{0.5, -0.25, 0.1}, 1, 1, 1, []float64{0.5, 1.25, 0.9}, []float64{1, 1, 1}},
		// λ = 0: one-step TD errors. δ_0 = γV1 − V0 = 0.9·0.5 − 0.2 = 0.25; δ_1 = R − V1 = −1.5.
		{"td(0)", []float64{0.2, 0.5}, -1, 0.9, 0, []float64{0.25, -1.5}, []float64{0.45, -1}},
		// γ = 0.5, λ = 0.5: A_1 = R − V1 = 0.75; A_0 = (0.5·0.25 − 0) + 0.25·0.75 = 0.3125.
		{"discounted", []float64{0, 0.25}, 1, 0.5, 0.5, []float64{0.3125, 0.75}, []float64{0.3125, 1}},
		{"one token", []float64{-0.3}, 0.5, 1, 1, []float64{0.8}, []float64{0.5}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			adv, ret := gae(c.values, c.reward, c.gamma, c.lambda)
			for i := range adv {
				if !near(adv[i], c.adv[i], 1e-12) || !near(ret[i], c.ret[i], 1e-12) {
					t.Fatalf("A = %v, G = %v; want %v, %v", adv, ret, c.adv, c.ret)
				}
			}
		})
	}
}

// TestGAESourceIsRewardMinusValue: with γ = λ = 1 every token's advantage is R − V(s_t), for any
// length and values (the recursion telescopes).
func TestGAESourceIsRewardMinusValue(t *testing.T) {
	rng := rand.New(rand.NewPCG(4, 5))
	for trial := 0; trial < 200; trial++ {
		vals := make([]float64, 1+rng.IntN(300))
		for i := range vals {
			vals[i] = 2*rng.Float64() - 1
		}
		R := 2*rng.Float64() - 1
		adv, ret := gae(vals, R, 1, 1)
		for i := range vals {
			if !near(adv[i], R-vals[i], 1e-12) || !near(ret[i], R, 1e-12) {
				t.Fatalf("trial %d token %d: A = %v, G = %v; want %v, %v", trial, i, adv[i], ret[i], R-vals[i], R)
			}
		}
	}
}

func TestGroupAdvantages(t *testing.T) {
	cases := []struct {
		name    string
		rewards []float64
		want    []float64
	}{
		// mean 0, sample std √((1+0+1)/2) = 1.
		{"symmetric", []float64{1, 0, -1}, []float64{1 / (1 + groupEps), 0, -1 / (1 + groupEps)}},
		// mean 0.5, sample std √((0.25·2)/1) = √0.5.
		{"pair", []float64{1, 0}, []float64{0.5 / (math.Sqrt(0.5) + groupEps), -0.5 / (math.Sqrt(0.5) + groupEps)}},
		{"all equal", []float64{0.3, 0.3, 0.3, 0.3}, []float64{0, 0, 0, 0}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := groupAdvantages(c.rewards)
			for i := range got {
				if !near(got[i], c.want[i], 1e-12) {
					t.Fatalf("got %v, want %v", got, c.want)
				}
			}
		})
	}
}
