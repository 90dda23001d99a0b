package countdown

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestSolveTestSet is the acceptance check: every one of the 820 test problems is solved, and the
// verifier accepts both the answer and the worked solution. BenchmarkSolveTestSet times it.
func TestSolveTestSet(t *testing.T) {
	ps, err := Load(testPath)
	if err != nil {
		t.Fatal(err)
	}
	for i, p := range ps {
		w, err := WorkedSolution(p)
		if err != nil {
			t.Fatalf("problem %d %v: %v", i, p, err)
		}
		if !Correct(p, w) {
			t.Fatalf("problem %d %v: verifier rejects %q", i, p, w)
		}
		checkSteps(t, p, w)
	}
}

func TestSolve(t *testing.T) {
	tests := []struct {
		name string
		p    Problem
		want string
		err  error
	}{
		{"target is an input", Problem{Input: []int{4, 7}, Target: 7}, "7", nil},
		{"one operation", Problem{Input: []int{5, 9, 2}, Target: 14}, "9+5", nil},
		{"fewest operations win", Problem{Input: []int{1, 2, 3, 6}, Target: 6}, "6", nil},
		{"not all numbers needed", Problem{Input: []int{3, 3, 8, 8}, Target: 24}, "8*3", nil},
		{"needs a fraction", Problem{Input: []int{1, 2, 3, 8}, Target: 28}, "8*(3+1/2)", nil},
		{"needs a fraction too", Problem{Input: []int{1, 3, 4, 8}, Target: 22}, "8*(3-1/4)", nil},
		{"zero in input", Problem{Input: []int{0, 3}, Target: 3}, "3", nil},
		{"unsolvable", Problem{Input: []int{1, 1, 1}, Target: 100}, "", ErrUnsolvable},
		{"unsolvable with zero", Problem{Input: []int{0}, Target: 1}, "", ErrUnsolvable},
		{"invalid problem", Problem{Input: []int{1}, Target: 0}, "", ErrProblem},
		{"too many numbers", Problem{Input: []int{1, 2, 3, 4, 5, 6, 7}, Target: 1000}, "", ErrTooLarge},
		{"overflow leaves no proof", Problem{Input: []int{1 << 62, 1 << 62}, Target: 5}, "", ErrTooLarge},
		{"overflow elsewhere is fine", Problem{Input: []int{1 << 62, 1 << 62}, Target: 1}, "4611686018427387904/4611686018427387904", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Solve(tt.p)
			if !errors.Is(err, tt.err) {
				t.Fatalf("Solve(%v) error = %v, want %v", tt.p, err, tt.err)
			}
			if got != tt.want {
				t.Errorf("Solve(%v) = %q, want %q", tt.p, got, tt.want)
			}
			if _, werr := WorkedSolution(tt.p); !errors.Is(werr, tt.err) {
				t.Errorf("WorkedSolution error = %v, want %v", werr, tt.err)
			}
		})
	}
}

func TestWorkedSolutionFormat(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{Input: []int{5, 9, 2}, Target: 28}, "<step>9+5=14</step><step>14*2=28</step><answer>(9+5)*2</answer>"},
		{Problem{Input: []int{4, 7}, Target: 7}, "<step>7=7</step><answer>7</answer>"},
		{Problem{Input: []int{1, 2, 3, 8}, Target: 28}, "<step>1/2=1/2</step><step>3+(1/2)=7/2</step><step>8*(7/2)=28</step><answer>8*(3+1/2)</answer>"},
		{Problem{Input: []int{1, 2, 9, 8}, Target: 68}, "<step>1/2=1/2</step><step>9-(1/2)=17/2</step><step>(17/2)*8=68</step><answer>(9-1/2)*8</answer>"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.p), func(t *testing.T) {
			got, err := WorkedSolution(tt.p)
			if err != nil || got != tt.want {
				t.Errorf("WorkedSolution = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

var stepRE = regexp.MustCompile(`<step>([^<]*)</step>`)

// checkSteps checks that every step "a op b=c" of a worked solution is true arithmetic and the
// last result is the target, evaluating both sides with the verifier's exact arithmetic.
func checkSteps(t *testing.T, p Problem, worked string) {
	t.Helper()
	steps := stepRE.FindAllStringSubmatch(worked, -1)
	if len(steps) == 0 {
		t.Fatalf("%v: no steps in %q", p, worked)
	}
	var last *big.Rat
	for _, s := range steps {
		lhs, rhs, ok := strings.Cut(s[1], "=")
		if !ok {
			t.Fatalf("%v: step %q has no =", p, s[1])
		}
		l, r := evalLoose(t, lhs), evalLoose(t, rhs)
		if l.Cmp(r) != 0 {
			t.Fatalf("%v: step %q is false (%s ≠ %s)", p, s[1], l.RatString(), r.RatString())
		}
		last = r
	}
	if last.Cmp(big.NewRat(int64(p.Target), 1)) != 0 {
		t.Fatalf("%v: last step ends at %s", p, last.RatString())
	}
}

// evalLoose evaluates a step side, where intermediate values may be negative: "(-5)" is read as
// "(0-5)". Any literal is allowed.
func evalLoose(t *testing.T, s string) *big.Rat {
	t.Helper()
	s = strings.ReplaceAll(s, "(-", "(0-")
	if strings.HasPrefix(s, "-") {
		s = "0" + s
	}
	var lits []int
	for _, f := range regexp.MustCompile(`[0-9]+`).FindAllString(s, -1) {
		var n int
		fmt.Sscan(f, &n)
		lits = append(lits, n)
	}
	v, err := Eval(s, lits)
	if err != nil {
		t.Fatalf("step side %q: %v", s, err)
	}
	return v
}

// bruteSolvable is the dumb reference: pick any ordered pair of the remaining values, replace it
// by one combination, recurse; a value equal to the target after k operations solves in k. It
// returns the fewest operations, or -1.
func bruteSolvable(vals []*big.Rat, target *big.Rat, used int) int {
	best := -1
	for _, v := range vals {
		if v.Cmp(target) == 0 {
			return used
		}
	}
	for i := range vals {
		for j := range vals {
			if i == j {
				continue
			}
			var rest []*big.Rat
			for k := range vals {
				if k != i && k != j {
					rest = append(rest, vals[k])
				}
			}
			a, b := vals[i], vals[j]
			results := []*big.Rat{new(big.Rat).Add(a, b), new(big.Rat).Sub(a, b), new(big.Rat).Mul(a, b)}
			if b.Sign() != 0 {
				results = append(results, new(big.Rat).Quo(a, b))
			}
			for _, r := range results {
				if k := bruteSolvable(append(rest[:len(rest):len(rest)], r), target, used+1); k >= 0 && (best < 0 || k < best) {
					best = k
				}
			}
		}
	}
	return best
}

// TestSolveAgainstBruteForce property-tests the subset search against the dumb recursion on
// random small problems, solvable or not, zeros included.
func TestSolveAgainstBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 0))
	solvable := 0
	for i := range 300 {
		p := Problem{Input: make([]int, 1+rng.IntN(4)), Target: 1 + rng.IntN(60)}
		vals := make([]*big.Rat, len(p.Input))
		for j := range p.Input {
			p.Input[j] = rng.IntN(10)
			vals[j] = big.NewRat(int64(p.Input[j]), 1)
		}
		want := bruteSolvable(vals, big.NewRat(int64(p.Target), 1), 0)
		n, err := solve(p)
		switch {
		case want < 0 && !errors.Is(err, ErrUnsolvable):
			t.Fatalf("case %d %v: brute force finds none, solve = %v, %v", i, p, n, err)
		case want >= 0 && err != nil:
			t.Fatalf("case %d %v: brute force solves in %d, solve: %v", i, p, want, err)
		case want >= 0 && n.ops() != want:
			t.Fatalf("case %d %v: %s takes %d operations, brute force %d", i, p, n.expr(), n.ops(), want)
		case want >= 0:
			solvable++
			if !Correct(p, "<answer>"+n.expr()+"</answer>") {
				t.Fatalf("case %d %v: verifier rejects %s", i, p, n.expr())
			}
		}
	}
	if solvable < 50 || solvable > 250 {
		t.Errorf("%d of 300 solvable: the sample does not exercise both outcomes", solvable)
	}
}

// TestSolveJSONLGolden pins the solver's output, worked solutions included, for the first test
// problems and some edge cases. Refresh with go test ./countdown -run Golden -update.
func TestSolveJSONLGolden(t *testing.T) {
	golden(t, "solve", SolveJSONL)
}

func TestGradeJSONLGolden(t *testing.T) {
	golden(t, "grade", GradeJSONL)
}

func golden(t *testing.T, name string, fn func(io.Reader, io.Writer) error) {
	t.Helper()
	in, err := os.Open("testdata/" + name + "_input.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var out bytes.Buffer
	if err := fn(in, &out); err != nil {
		t.Fatal(err)
	}
	path := "testdata/" + name + ".golden"
	if *update {
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("%s output differs from %s:\n%s", name, path, out.String())
	}
}
