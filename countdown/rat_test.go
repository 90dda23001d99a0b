package countdown

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// TestRatAgainstBig property-tests the int64 fractions against math/big: an operation either
// reports overflow, when the exact result or a cross product would not fit, or gives the exact
// result in lowest terms; less is always exact.
func TestRatAgainstBig(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 0))
	operand := func() rat {
		scale := []int64{10, 1 << 20, 1 << 40, math.MaxInt64}[rng.IntN(4)]
		n := rng.Int64N(scale) - scale/2
		d := 1 + rng.Int64N(scale/2)
		return reduce(n, d)
	}
	overflows := 0
	for i := range 20000 {
		a, b := operand(), operand()
		for _, op := range []byte("+-*/") {
			if op == '/' && b.num == 0 {
				continue
			}
			got, ok := apply(op, a, b)
			want := exactOp(op, a, b)
			if !ok {
				overflows++
				if want.Num().IsInt64() && want.Denom().IsInt64() && op == '*' {
					// mul cancels first, so it overflows only if the result does not fit
					t.Fatalf("case %d: %v %c %v reported overflow, result %s fits", i, a, op, b, want.RatString())
				}
				continue
			}
			if got.den <= 0 || gcd(got.num, got.den) != 1 || big.NewRat(got.num, got.den).Cmp(want) != 0 {
				t.Fatalf("case %d: %v %c %v = %v, want %s", i, a, op, b, got, want.RatString())
			}
		}
		wantLess := big.NewRat(a.num, a.den).Cmp(big.NewRat(b.num, b.den)) < 0
		if a.less(b) != wantLess {
			t.Fatalf("case %d: %v < %v = %v", i, a, b, !wantLess)
		}
	}
	if overflows == 0 {
		t.Error("no operand pair overflowed: the sample misses the edge")
	}
}

func exactOp(op byte, a, b rat) *big.Rat {
	x, y := big.NewRat(a.num, a.den), big.NewRat(b.num, b.den)
	switch op {
	case '+':
		return x.Add(x, y)
	case '-':
		return x.Sub(x, y)
	case '*':
		return x.Mul(x, y)
	}
	return x.Quo(x, y)
}

func TestInt64Edges(t *testing.T) {
	tests := []struct {
		name string
		got  func() (int64, bool)
		want int64
		ok   bool
	}{
		{"add fits", func() (int64, bool) { return add64(math.MaxInt64-1, 1) }, math.MaxInt64, true},
		{"add overflows", func() (int64, bool) { return add64(math.MaxInt64, 1) }, 0, false},
		{"add to MinInt64 refused", func() (int64, bool) { return add64(-math.MaxInt64, -1) }, 0, false},
		{"mul fits", func() (int64, bool) { return mul64(-(1 << 31), 1<<31) }, -(1 << 62), true},
		{"mul overflows", func() (int64, bool) { return mul64(1<<32, 1<<31) }, 0, false},
		{"mul negative overflows", func() (int64, bool) { return mul64(-(1 << 32), 1<<31) }, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.got()
			if got != tt.want || ok != tt.ok {
				t.Errorf("= %d, %v; want %d, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
	if g := gcd(0, 0); g != 1 {
		t.Errorf("gcd(0, 0) = %d, want 1 so callers can divide", g)
	}
	if r := reduce(6, -4); r != (rat{-3, 2}) {
		t.Errorf("reduce(6, -4) = %v", r)
	}
}
