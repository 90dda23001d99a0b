package countdown

import (
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"
)

const (
	openTag  = AnswerOpen
	closeTag = AnswerClose

	// The source's rewards for the two failure kinds.
	rewardNoAnswer = -1.0
	rewardInvalid  = -0.9

	// maxNesting bounds the parser's recursion so a hostile answer cannot grow the stack without
	// limit; a sensible answer over a handful of numbers needs a few levels.
	maxNesting = 1000
)

// Result is a completion's grade: the dense training reward and whether it is exactly right.
type Result struct {
	Reward  float64 `json:"reward"`
	Correct bool    `json:"correct"`
}

// Answer returns the text inside the last complete <answer>…</answer> pair. Pairs are found left
// to right, each opening tag closed by the next closing tag, so the result matches the last match
// of the non-greedy regular expression <answer>(.*?)</answer>. It runs in linear time.
func Answer(completion string) (string, bool) {
	var answer string
	found := false
	rest := completion
	for {
		i := strings.Index(rest, openTag)
		if i < 0 {
			return answer, found
		}
		rest = rest[i+len(openTag):]
		j := strings.Index(rest, closeTag)
		if j < 0 {
			return answer, found
		}
		answer, found = rest[:j], true
		rest = rest[j+len(closeTag):]
	}
}

// Check returns the exact value of the completion's last answer, or why it has none: ErrNoAnswer,
// ErrSyntax, ErrNumbers, ErrDivByZero (or ErrProblem when p itself is invalid).
func Check(p Problem, completion string) (*big.Rat, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	answer, ok := Answer(completion)
	if !ok {
		return nil, ErrNoAnswer
	}
	return Eval(answer, p.Input)
}

// Grade scores a completion once for both rewards.
func Grade(p Problem, completion string) Result {
	v, err := Check(p, completion)
	switch {
	case errors.Is(err, ErrNoAnswer):
		return Result{Reward: rewardNoAnswer}
	case err != nil:
		return Result{Reward: rewardInvalid}
	}
	target := new(big.Rat).SetInt64(int64(p.Target))
	return Result{Reward: closeness(v, target), Correct: v.Cmp(target) == 0}
}

// DenseReward is the training reward: −1 without an answer, −0.9 for an invalid answer,
// otherwise 1 − 2·min(|target − value| / target, 1), so exactly right scores 1 and anything off
// by the target or more scores −1. An invalid problem scores like an invalid answer.
func DenseReward(p Problem, completion string) float64 {
	return Grade(p, completion).Reward
}

// SparseReward is the evaluation reward: 1 if the last answer equals the target exactly, else 0.
func SparseReward(p Problem, completion string) float64 {
	if Correct(p, completion) {
		return 1
	}
	return 0
}

// Correct reports whether the last answer is valid and equals the target exactly.
func Correct(p Problem, completion string) bool {
	return Grade(p, completion).Correct
}

// closeness is 1 − 2·min(|t − v| / t, 1) for t > 0, computed exactly and rounded once.
func closeness(v, t *big.Rat) float64 {
	d := new(big.Rat).Sub(t, v)
	d.Abs(d)
	d.Quo(d, t)
	if d.Num().CmpAbs(d.Denom()) >= 0 { // d ≥ 1
		return -1
	}
	f, _ := d.Float64()
	return 1 - 2*f
}

// Eval parses an answer expression and returns its exact value. Grammar, with any spaces, tabs
// and newlines between tokens:
//
//	expr   = term { ("+" | "-") term }
//	term   = factor { ("*" | "/") factor }
//	factor = integer | "(" expr ")"
//
// Operators are left-associative with the usual precedence; there is no unary minus. Each
// literal must take one still-unused number of input (a multiset), so the work is linear in
// len(expr) and at most len(input) big-number operations happen.
func Eval(expr string, input []int) (*big.Rat, error) {
	ps := parser{s: expr, left: append([]int(nil), input...)}
	v, err := ps.expr()
	if err != nil {
		return nil, err
	}
	ps.skipSpace()
	if ps.pos < len(ps.s) {
		return nil, ps.unexpected()
	}
	return v, nil
}

// parser is a recursive-descent evaluator over one answer.
type parser struct {
	s     string
	pos   int
	depth int
	left  []int // input numbers not used yet
	// factors counts factor calls; tests use it to prove the work is linear in len(s).
	factors int
}

func (ps *parser) skipSpace() {
	for ps.pos < len(ps.s) {
		switch ps.s[ps.pos] {
		case ' ', '\t', '\n', '\r':
			ps.pos++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (ps *parser) peek() byte {
	ps.skipSpace()
	if ps.pos == len(ps.s) {
		return 0
	}
	return ps.s[ps.pos]
}

func (ps *parser) unexpected() error {
	if ps.pos >= len(ps.s) {
		return fmt.Errorf("%w: unexpected end", ErrSyntax)
	}
	return fmt.Errorf("%w: unexpected %q at offset %d", ErrSyntax, ps.s[ps.pos], ps.pos)
}

func (ps *parser) expr() (*big.Rat, error) {
	v, err := ps.term()
	if err != nil {
		return nil, err
	}
	for {
		op := ps.peek()
		if op != '+' && op != '-' {
			return v, nil
		}
		ps.pos++
		w, err := ps.term()
		if err != nil {
			return nil, err
		}
		if op == '+' {
			v.Add(v, w)
		} else {
			v.Sub(v, w)
		}
	}
}

func (ps *parser) term() (*big.Rat, error) {
	v, err := ps.factor()
	if err != nil {
		return nil, err
	}
	for {
		op := ps.peek()
		if op != '*' && op != '/' {
			return v, nil
		}
		ps.pos++
		w, err := ps.factor()
		if err != nil {
			return nil, err
		}
		if op == '*' {
			v.Mul(v, w)
			continue
		}
		if w.Sign() == 0 {
			return nil, ErrDivByZero
		}
		v.Quo(v, w)
	}
}

func (ps *parser) factor() (*big.Rat, error) {
	ps.factors++
	c := ps.peek()
	switch {
	case c == '(':
		if ps.depth == maxNesting {
			return nil, fmt.Errorf("%w: parentheses nested deeper than %d", ErrSyntax, maxNesting)
		}
		ps.pos++
		ps.depth++
		v, err := ps.expr()
		if err != nil {
			return nil, err
		}
		if ps.peek() != ')' {
			return nil, ps.unexpected()
		}
		ps.pos++
		ps.depth--
		return v, nil
	case c >= '0' && c <= '9':
		return ps.literal()
	default:
		return nil, ps.unexpected()
	}
}

// literal reads an integer and takes it from the unused input numbers.
func (ps *parser) literal() (*big.Rat, error) {
	start := ps.pos
	for ps.pos < len(ps.s) && ps.s[ps.pos] >= '0' && ps.s[ps.pos] <= '9' {
		ps.pos++
	}
	digits := strings.TrimLeft(ps.s[start:ps.pos], "0")
	if digits == "" {
		digits = "0"
	}
	n, err := strconv.Atoi(digits) // too long for an int means not in the input either
	if err != nil || !ps.take(n) {
		return nil, fmt.Errorf("%w: %.20s at offset %d", ErrNumbers, ps.s[start:ps.pos], start)
	}
	return new(big.Rat).SetInt64(int64(n)), nil
}

// take removes one n from the unused numbers.
func (ps *parser) take(n int) bool {
	for i, v := range ps.left {
		if v == n {
			last := len(ps.left) - 1
			ps.left[i] = ps.left[last]
			ps.left = ps.left[:last]
			return true
		}
	}
	return false
}
