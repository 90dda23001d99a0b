package countdown

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkGrade measures completions graded per second (one Grade gives both rewards).
func BenchmarkGrade(b *testing.B) {
	p := Problem{Input: []int{5, 13, 5, 9}, Target: 31}
	worked := "<step>13-5=8</step><step>8*5=40</step><step>40-9=31</step><answer>(13-5)*5-9</answer>"
	prose := "<step>First, 13 - 5 = 8, which leaves 5 and 9.</step><step>Then 8 * 5 = 40.</step>" +
		"<step>Finally 40 - 9 = 31, the target.</step><answer>(13 - 5) * 5 - 9</answer>"
	cases := []struct{ name, completion string }{
		{"worked", worked},
		{"prose", prose},
		{"wrong_value", "<step>13+9=22</step><answer>13+9+5</answer>"},
		{"bad_numbers", "<answer>13+13+5</answer>"},
		{"no_answer_10KB", strings.Repeat("<step>13+9=22</step>", 512)},
		{"reasoning_10KB", strings.Repeat("<step>13+9=22</step>", 512) + worked},
		{"deep_parens_10KB", "<answer>" + strings.Repeat("(", 10<<10) + "</answer>"},
		{"spaces_10KB", "<answer>13" + strings.Repeat(" ", 10<<10) + "+9</answer>"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				Grade(p, c.completion)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "completions/s")
		})
	}
}

// BenchmarkSolveTestSet solves all 820 test problems per iteration, worked solutions included.
func BenchmarkSolveTestSet(b *testing.B) {
	ps, err := Load(testPath)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		for _, p := range ps {
			if _, err := WorkedSolution(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(ps))/b.Elapsed().Seconds(), "problems/s")
}

// BenchmarkSolveUnsolvable times the full search that proves a problem unsolvable.
func BenchmarkSolveUnsolvable(b *testing.B) {
	cases := []struct {
		name string
		p    Problem
	}{
		{"4_numbers", Problem{Input: []int{13, 11, 7, 5}, Target: 1 << 20}},
		{"5_numbers", Problem{Input: []int{13, 11, 7, 5, 3}, Target: 1 << 30}},
		{"6_numbers", Problem{Input: []int{13, 11, 7, 5, 3, 2}, Target: 1 << 40}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Solve(c.p); err == nil {
					b.Fatal("solved")
				}
			}
		})
	}
}

// BenchmarkGenerate measures problems generated per second for the presets.
func BenchmarkGenerate(b *testing.B) {
	for name, cfg := range map[string]GenConfig{"default": DefaultGenConfig(), "easy": EasyGenConfig()} {
		b.Run(name, func(b *testing.B) {
			cfg.Count = 1
			rng := rand.New(rand.NewPCG(1, 0))
			for b.Loop() {
				if _, err := Generate(cfg, rng); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "problems/s")
		})
	}
}
