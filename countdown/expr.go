package countdown

import "strconv"

// node is an expression tree the solver builds; a leaf holds one input number.
type node struct {
	val         rat
	op          byte // '+', '-', '*' or '/'; 0 for a leaf
	left, right *node
	// ugly counts results in the tree that are negative or fractional. The solver keeps the least
	// ugly expression per value, so worked solutions stay in positive integers where they can.
	ugly int
}

func leaf(n int64) *node { return &node{val: ratInt(n)} }

func isUgly(v rat) bool { return v.num < 0 || !v.isInt() }

// precedence of the operator at a tree's root; a leaf binds tightest.
func precedence(op byte) int {
	switch op {
	case '+', '-':
		return 1
	case '*', '/':
		return 2
	}
	return 3
}

// expr writes the tree with the fewest parentheses that keep its value: a child is wrapped when
// it binds looser than its parent, and a right child of equal precedence also under - and /
// (a-(b-c), a/(b*c)); a+(b-c) = a+b-c and a*(b/c) = a*b/c hold exactly, so those need none.
func (n *node) expr() string { return string(n.appendExpr(nil)) }

func (n *node) appendExpr(b []byte) []byte {
	if n.op == 0 {
		return strconv.AppendInt(b, n.val.num, 10)
	}
	p := precedence(n.op)
	b = n.left.appendWrapped(b, precedence(n.left.op) < p)
	b = append(b, n.op)
	rp := precedence(n.right.op)
	return n.right.appendWrapped(b, rp < p || rp == p && (n.op == '-' || n.op == '/'))
}

func (n *node) appendWrapped(b []byte, paren bool) []byte {
	if !paren {
		return n.appendExpr(b)
	}
	b = append(b, '(')
	b = n.appendExpr(b)
	return append(b, ')')
}

// worked writes one <step>a op b=c</step> per operation, children before parents and left before
// right, then the answer. A target that is itself an input takes the single step "7=7", so every
// worked solution has at least one step as the prompt asks.
func (n *node) worked() string {
	var b []byte
	if n.op == 0 {
		b = append(b, StepOpen...)
		b = appendValue(b, n.val, false)
		b = append(b, '=')
		b = appendValue(b, n.val, false)
		b = append(b, StepClose...)
	} else {
		b = n.appendSteps(b)
	}
	b = append(b, openTag...)
	b = n.appendExpr(b)
	return string(append(b, closeTag...))
}

func (n *node) appendSteps(b []byte) []byte {
	if n.op == 0 {
		return b
	}
	b = n.left.appendSteps(b)
	b = n.right.appendSteps(b)
	b = append(b, StepOpen...)
	b = appendValue(b, n.left.val, true)
	b = append(b, n.op)
	b = appendValue(b, n.right.val, true)
	b = append(b, '=')
	b = appendValue(b, n.val, false)
	return append(b, StepClose...)
}

// appendValue writes an intermediate value; as an operand a negative or fractional one is
// parenthesised so "8/(8/3)" cannot be misread as (8/8)/3.
func appendValue(b []byte, v rat, operand bool) []byte {
	if operand && isUgly(v) {
		b = append(b, '(')
		b = append(b, v.String()...)
		return append(b, ')')
	}
	return append(b, v.String()...)
}

// ops counts the operations in the tree.
func (n *node) ops() int {
	if n.op == 0 {
		return 0
	}
	return 1 + n.left.ops() + n.right.ops()
}
