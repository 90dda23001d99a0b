package countdown

import (
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// rat is an exact fraction in lowest terms with a positive denominator, kept in int64 so the
// solver's value sets can be hashed and combined fast. Every operation reports overflow instead of
// wrapping; the search then drops that branch and says so. math.MinInt64 never occurs, so negation
// and absolute values are always safe.
type rat struct {
	num, den int64
}

func ratInt(n int64) rat { return rat{num: n, den: 1} }

func (a rat) isInt() bool { return a.den == 1 }

// String writes a as "14", "-5" or "8/3".
func (a rat) String() string {
	if a.den == 1 {
		return strconv.FormatInt(a.num, 10)
	}
	return strconv.FormatInt(a.num, 10) + "/" + strconv.FormatInt(a.den, 10)
}

// less reports a < b exactly, through math/big when the cross products leave int64.
func (a rat) less(b rat) bool {
	x, ok1 := mul64(a.num, b.den)
	y, ok2 := mul64(b.num, a.den)
	if ok1 && ok2 {
		return x < y
	}
	return big.NewRat(a.num, a.den).Cmp(big.NewRat(b.num, b.den)) < 0
}

func (a rat) add(b rat) (rat, bool) {
	if a.den == 1 && b.den == 1 {
		n, ok := add64(a.num, b.num)
		return rat{n, 1}, ok
	}
	x, ok1 := mul64(a.num, b.den)
	y, ok2 := mul64(b.num, a.den)
	n, ok3 := add64(x, y)
	d, ok4 := mul64(a.den, b.den)
	if !(ok1 && ok2 && ok3 && ok4) {
		return rat{}, false
	}
	return reduce(n, d), true
}

func (a rat) sub(b rat) (rat, bool) { return a.add(rat{-b.num, b.den}) }

func (a rat) mul(b rat) (rat, bool) {
	// Cross-cancel first so the products stay as small as the result allows.
	g1, g2 := gcd(a.num, b.den), gcd(b.num, a.den)
	n, ok1 := mul64(a.num/g1, b.num/g2)
	d, ok2 := mul64(a.den/g2, b.den/g1)
	if !(ok1 && ok2) {
		return rat{}, false
	}
	return rat{n, d}, true
}

// div returns a/b; the caller has checked that b is not zero.
func (a rat) div(b rat) (rat, bool) {
	inv := rat{b.den, b.num}
	if inv.den < 0 {
		inv = rat{-inv.num, -inv.den}
	}
	return a.mul(inv)
}

// reduce brings n/d (d ≠ 0) to lowest terms with d > 0.
func reduce(n, d int64) rat {
	if d < 0 {
		n, d = -n, -d
	}
	g := gcd(n, d)
	return rat{n / g, d / g}
}

// gcd of |a| and |b|, with gcd(0, b) = |b| and gcd(0, 0) = 1 so callers may always divide by it.
func gcd(a, b int64) int64 {
	if a < 0 {
		a = -a
	}
	if b < 0 {
		b = -b
	}
	for b != 0 {
		a, b = b, a%b
	}
	if a == 0 {
		return 1
	}
	return a
}

func add64(a, b int64) (int64, bool) {
	c := a + b
	if (c > a) != (b > 0) || c == math.MinInt64 {
		return 0, false
	}
	return c, true
}

func mul64(a, b int64) (int64, bool) {
	neg := (a < 0) != (b < 0)
	ua, ub := uint64(a), uint64(b)
	if a < 0 {
		ua = uint64(-a)
	}
	if b < 0 {
		ub = uint64(-b)
	}
	hi, lo := bits.Mul64(ua, ub)
	if hi != 0 || lo > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(lo), true
	}
	return int64(lo), true
}
