package countdown

import (
	"errors"
	"math/big"
	"testing"
)

// FuzzGrade: the verifier never panics on any completion up to 10 KB, its work stays linear in
// the answer's length (the structural bound on its time), and its outputs agree with each other.
func FuzzGrade(f *testing.F) {
	f.Add("<step>13-5=8</step><answer>(13-5)*5-9</answer>", uint8(5), uint8(13), uint8(5), uint8(9), uint16(31))
	f.Add("<answer>8/(3-8/3)</answer>", uint8(3), uint8(3), uint8(8), uint8(8), uint16(24))
	f.Add("<answer>((((1)))</answer><answer>", uint8(1), uint8(2), uint8(3), uint8(4), uint16(1))
	f.Add("<answer>0/0</answer>", uint8(0), uint8(0), uint8(0), uint8(0), uint16(0))
	f.Add("<answer>99999999999999999999999+1</answer>", uint8(1), uint8(1), uint8(1), uint8(1), uint16(7))
	f.Fuzz(func(t *testing.T, completion string, a, b, c, d uint8, target uint16) {
		if len(completion) > 10<<10 {
			t.Skip("the verifier's bound is checked on inputs up to 10 KB")
		}
		p := Problem{Input: []int{int(a % 14), int(b % 14), int(c % 14), int(d % 14)}, Target: 1 + int(target%3000)}
		g := Grade(p, completion)
		if g.Reward < -1 || g.Reward > 1 {
			t.Fatalf("reward %v outside [-1, 1]", g.Reward)
		}
		if g.Correct != (g.Reward == 1) {
			t.Fatalf("correct %v with reward %v", g.Correct, g.Reward)
		}
		if DenseReward(p, completion) != g.Reward || Correct(p, completion) != g.Correct {
			t.Fatal("DenseReward/Correct disagree with Grade")
		}
		answer, ok := Answer(completion)
		if !ok {
			if g.Reward != -1 {
				t.Fatalf("no answer but reward %v", g.Reward)
			}
			return
		}
		ps := parser{s: answer, left: append([]int(nil), p.Input...)}
		ps.expr()
		if ps.factors > len(answer)+1 {
			t.Fatalf("%d factor calls for a %d-byte answer", ps.factors, len(answer))
		}
	})
}

// FuzzEvalAgreesWithSolver builds an arbitrary expression tree from the fuzz bytes with the
// solver's int64 arithmetic, prints it with the solver's minimal parentheses, and checks the
// verifier's big.Rat parse gives the same value (or finds the same division by zero).
func FuzzEvalAgreesWithSolver(f *testing.F) {
	f.Add([]byte{3, 3, 3, 8, 8, 0, 1, 3, 1, 0, 3, 2, 0, 1})
	f.Add([]byte{5, 1, 2, 3, 4, 5, 0, 1, 2, 2, 3, 1, 0, 1, 3, 0, 1, 0})
	f.Add([]byte{1, 0, 0, 0, 3})
	f.Fuzz(func(t *testing.T, data []byte) {
		root, nums, divZero := treeFromBytes(data)
		if root == nil {
			return
		}
		expr := root.expr()
		got, err := Eval(expr, nums)
		if divZero {
			if !errors.Is(err, ErrDivByZero) {
				t.Fatalf("Eval(%q, %v) = %v, %v; the tree divides by zero", expr, nums, got, err)
			}
			return
		}
		if err != nil {
			t.Fatalf("Eval(%q, %v): %v", expr, nums, err)
		}
		if want := big.NewRat(root.val.num, root.val.den); got.Cmp(want) != 0 {
			t.Fatalf("Eval(%q) = %s, solver arithmetic says %s", expr, got.RatString(), want.RatString())
		}
	})
}

// treeFromBytes reads a leaf count, the leaves (0..19) and then, while more than one subtree is
// left, two subtree indices and an operator; bytes that run out read as zero.
func treeFromBytes(data []byte) (root *node, nums []int, divZero bool) {
	next := func() int {
		if len(data) == 0 {
			return 0
		}
		b := data[0]
		data = data[1:]
		return int(b)
	}
	if len(data) == 0 {
		return nil, nil, false
	}
	k := 1 + next()%MaxNumbers
	var trees []*node
	for range k {
		n := next() % 20
		nums = append(nums, n)
		trees = append(trees, leaf(int64(n)))
	}
	for len(trees) > 1 {
		i := next() % len(trees)
		j := next() % (len(trees) - 1)
		if j >= i {
			j++
		}
		op := "+-*/"[next()%4]
		l, r := trees[i], trees[j]
		n := &node{op: op, left: l, right: r}
		if op == '/' && r.val.num == 0 {
			divZero = true
		} else if !divZero {
			v, ok := apply(op, l.val, r.val)
			if !ok {
				panic("int64 overflow with six numbers below 20")
			}
			n.val = v
		}
		trees[i] = n
		trees = append(trees[:j], trees[j+1:]...)
	}
	return trees[0], nums, divZero
}
