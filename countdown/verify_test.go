package countdown

import (
	"errors"
	"math/big"
	"strings"
	"testing"
)

func TestAnswer(t *testing.T) {
	tests := []struct {
		name, completion, want string
		found                  bool
	}{
		{"none", "<step>5+9=14</step>", "", false},
		{"unclosed", "<answer>5+9", "", false},
		{"close before open", "</answer>5<answer>", "", false},
		{"single", "<step>x</step><answer>(5+9)*2</answer>", "(5+9)*2", true},
		{"empty", "<answer></answer>", "", true},
		{"last wins", "<answer>1</answer> no, <answer>2</answer>", "2", true},
		{"trailing unclosed ignored", "<answer>1</answer><answer>2", "1", true},
		{"open inside answer", "<answer>a<answer>b</answer>", "a<answer>b", true},
		{"stray close after", "<answer>1</answer>2</answer>", "1", true},
		{"multiline", "<answer>\n 5 +\n 9 \n</answer>", "\n 5 +\n 9 \n", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, found := Answer(tt.completion)
			if got != tt.want || found != tt.found {
				t.Errorf("Answer(%q) = %q, %v; want %q, %v", tt.completion, got, found, tt.want, tt.found)
			}
		})
	}
}

func TestEval(t *testing.T) {
	tests := []struct {
		name  string
		expr  string
		input []int
		want  string // exact value as big.Rat.RatString, or "" when err is set
		err   error
	}{
		{"issue: left to right with fractions", "7 / 3 * 6", []int{7, 3, 6}, "14", nil},
		{"issue: nested fraction", "8 / (3 - 8 / 3)", []int{3, 3, 8, 8}, "24", nil},
		{"precedence", "2+3*4", []int{2, 3, 4}, "14", nil},
		{"left associative minus", "8-3-2", []int{8, 3, 2}, "3", nil},
		{"left associative divide", "16/4/2", []int{16, 4, 2}, "2", nil},
		{"parentheses", "(5+9)*2", []int{5, 9, 2}, "28", nil},
		{"redundant parentheses", "((((5))))", []int{5}, "5", nil},
		{"whitespace everywhere", " \t( 5\n+ 9 )\r\n* 2 ", []int{5, 9, 2}, "28", nil},
		{"subset of input", "13-4", []int{4, 13, 1, 1}, "9", nil},
		{"repeated input number used twice", "5*5", []int{5, 13, 5, 9}, "25", nil},
		{"negative value", "3-8", []int{3, 8}, "-5", nil},
		{"fraction value", "1/3", []int{1, 3}, "1/3", nil},
		{"leading zeros", "007+1", []int{7, 1}, "8", nil},
		{"zero literal", "0*5", []int{0, 5}, "0", nil},

		{"empty", "", []int{1}, "", ErrSyntax},
		{"only spaces", "  ", []int{1}, "", ErrSyntax},
		{"unary minus", "-5+9", []int{5, 9}, "", ErrSyntax},
		{"unary plus", "+5", []int{5}, "", ErrSyntax},
		{"two numbers", "5 9", []int{5, 9}, "", ErrSyntax},
		{"dangling operator", "5+", []int{5}, "", ErrSyntax},
		{"unclosed parenthesis", "(5+9", []int{5, 9}, "", ErrSyntax},
		{"extra parenthesis", "5+9)", []int{5, 9}, "", ErrSyntax},
		{"empty parentheses", "()", []int{5}, "", ErrSyntax},
		{"power", "2**3", []int{2, 3}, "", ErrSyntax},
		{"decimal point", "5.0", []int{5}, "", ErrSyntax},
		{"letters", "five", []int{5}, "", ErrSyntax},
		{"equation", "5+9=14", []int{5, 9, 14}, "", ErrSyntax},
		{"unicode minus", "9−5", []int{9, 5}, "", ErrSyntax},
		{"too deep", strings.Repeat("(", maxNesting+1) + "5" + strings.Repeat(")", maxNesting+1), []int{5}, "", ErrSyntax},

		{"number not in input", "5+7", []int{5, 9}, "", ErrNumbers},
		{"number used twice", "5*5", []int{5, 9}, "", ErrNumbers},
		{"huge literal", "123456789012345678901234567890", []int{5}, "", ErrNumbers},

		{"divide by literal zero", "5/0", []int{5, 0}, "", ErrDivByZero},
		{"divide by zero value", "8/(3-3)", []int{8, 3, 3}, "", ErrDivByZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Eval(tt.expr, tt.input)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Eval(%q, %v) error = %v, want %v", tt.expr, tt.input, err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Eval(%q, %v): %v", tt.expr, tt.input, err)
			}
			if got.RatString() != tt.want {
				t.Errorf("Eval(%q, %v) = %s, want %s", tt.expr, tt.input, got.RatString(), tt.want)
			}
		})
	}
}

func TestEvalDoesNotChangeInput(t *testing.T) {
	input := []int{5, 9, 2}
	if _, err := Eval("2*9+5", input); err != nil {
		t.Fatal(err)
	}
	if input[0] != 5 || input[1] != 9 || input[2] != 2 {
		t.Errorf("input changed to %v", input)
	}
}

// TestRewards covers every branch of the dense and sparse rewards (the source's values).
func TestRewards(t *testing.T) {
	p := Problem{Input: []int{3, 3, 8, 8, 5}, Target: 24}
	tests := []struct {
		name       string
		p          Problem
		completion string
		dense      float64
		correct    bool
	}{
		{"no answer", p, "<step>8*3=24</step>", -1, false},
		{"unclosed answer", p, "<step>8*3=24</step><answer>8*3", -1, false},
		{"empty completion", p, "", -1, false},
		{"does not parse", p, "<answer>8 times 3</answer>", -0.9, false},
		{"empty answer", p, "<answer></answer>", -0.9, false},
		{"number not in input", p, "<answer>6*4</answer>", -0.9, false},
		{"number used too often", p, "<answer>8*3*3*8/8</answer>", -0.9, false},
		{"divides by zero", p, "<answer>8/(3-3)</answer>", -0.9, false},
		{"exact", p, "<step>8*3=24</step><answer>8*3</answer>", 1, true},
		{"exact through fractions", p, "<answer>8/(3-8/3)</answer>", 1, true},
		{"exact without all numbers", p, "<answer>(5+3)*3</answer>", 1, true},
		{"a quarter off", p, "<answer>8+8+3-5</answer>", 1 - 2*(10.0/24), false},
		{"one below", p, "<answer>(8-5)*8-3/3</answer>", 1 - 2*(1.0/24), false},
		{"above by a sixth", p, "<answer>8*3+8/(5-3)</answer>", 1 - 2*(4.0/24), false},
		{"fraction near", p, "<answer>8*3-3/8</answer>", 1 - 2*(3.0/8/24), false},
		{"zero is off by the target", p, "<answer>3-3</answer>", -1, false},
		{"negative", p, "<answer>3-8</answer>", -1, false},
		{"double the target", p, "<answer>8*3*(5-3)</answer>", -1, false},
		{"last answer counts", p, "<answer>8*3</answer><answer>8+3</answer>", 1 - 2*(13.0/24), false},
		{"invalid last answer counts", p, "<answer>8*3</answer><answer>8+</answer>", -0.9, false},
		{"invalid problem", Problem{Input: []int{3}, Target: 0}, "<answer>3</answer>", -0.9, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := DenseReward(tt.p, tt.completion); !closeTo(got, tt.dense) {
				t.Errorf("DenseReward = %v, want %v", got, tt.dense)
			}
			if got := Correct(tt.p, tt.completion); got != tt.correct {
				t.Errorf("Correct = %v, want %v", got, tt.correct)
			}
			wantSparse := 0.0
			if tt.correct {
				wantSparse = 1
			}
			if got := SparseReward(tt.p, tt.completion); got != wantSparse {
				t.Errorf("SparseReward = %v, want %v", got, wantSparse)
			}
			if g := Grade(tt.p, tt.completion); !closeTo(g.Reward, tt.dense) || g.Correct != tt.correct {
				t.Errorf("Grade = %+v, want {%v %v}", g, tt.dense, tt.correct)
			}
		})
	}
}

func closeTo(a, b float64) bool {
	d := a - b
	return d < 1e-12 && d > -1e-12
}

func TestCheckErrors(t *testing.T) {
	p := Problem{Input: []int{1, 2, 2}, Target: 3}
	tests := []struct {
		name, completion string
		want             error
	}{
		{"no answer", "1+2", ErrNoAnswer},
		{"syntax", "<answer>1+</answer>", ErrSyntax},
		{"numbers", "<answer>1+3</answer>", ErrNumbers},
		{"numbers used too often", "<answer>1+2+2+2</answer>", ErrNumbers},
		{"division by zero", "<answer>1/(2-2)</answer>", ErrDivByZero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Check(p, tt.completion); !errors.Is(err, tt.want) {
				t.Errorf("Check(%q) error = %v, want %v", tt.completion, err, tt.want)
			}
		})
	}
	if _, err := Check(Problem{}, "<answer>1</answer>"); !errors.Is(err, ErrProblem) {
		t.Errorf("Check on an empty problem: %v, want ErrProblem", err)
	}
	v, err := Check(p, "<answer>(1+2)/2</answer>")
	if err != nil || v.Cmp(big.NewRat(3, 2)) != 0 {
		t.Errorf("Check = %v, %v; want 3/2", v, err)
	}
}

// TestAdversarialAnswersAreLinear feeds 10 KB hostile completions and checks the verifier's work
// (calls of the factor rule) stays within the answer's length, the structural reason its time is
// bounded; BenchmarkGrade measures the time itself.
func TestAdversarialAnswersAreLinear(t *testing.T) {
	const size = 10 << 10
	input := []int{1, 2, 3, 4}
	tests := []struct {
		name, answer string
		want         error
	}{
		{"deep parentheses", strings.Repeat("(", size), ErrSyntax},
		{"nesting at the limit", strings.Repeat("(", maxNesting) + "1" + strings.Repeat(")", maxNesting), nil},
		{"long literal", strings.Repeat("9", size), ErrNumbers},
		{"long zero-padded literal", strings.Repeat("0", size) + "1", nil},
		{"many literals", strings.Repeat("1+", size/2) + "1", ErrNumbers},
		{"many operators", "1" + strings.Repeat("+", size), ErrSyntax},
		{"spaces", "1" + strings.Repeat(" ", size) + "+2", nil},
		{"parenthesised pairs", strings.Repeat("(1)", size/3), ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps := parser{s: tt.answer, left: append([]int(nil), input...)}
			_, err := ps.expr()
			if err == nil {
				ps.skipSpace()
				if ps.pos < len(ps.s) {
					err = ps.unexpected()
				}
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("error = %v, want %v", err, tt.want)
			}
			if ps.factors > len(tt.answer)+1 {
				t.Errorf("%d factor calls for %d bytes", ps.factors, len(tt.answer))
			}
		})
	}
	tags := strings.Repeat("<answer>", size/len(openTag))
	if _, ok := Answer(tags); ok {
		t.Error("unclosed tags found an answer")
	}
}
