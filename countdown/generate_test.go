package countdown

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"
)

func TestGenerateDeterministic(t *testing.T) {
	cfg := DefaultGenConfig()
	cfg.Count = 50
	a, err := Generate(cfg, rand.New(rand.NewPCG(1, 0)))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Generate(cfg, rand.New(rand.NewPCG(1, 0)))
	c, _ := Generate(cfg, rand.New(rand.NewPCG(2, 0)))
	if !reflect.DeepEqual(a, b) {
		t.Error("the same seed gave different problems")
	}
	if reflect.DeepEqual(a, c) {
		t.Error("different seeds gave the same problems")
	}
}

// TestGenerateMeetsConfig cross-checks the generator with the solver: every problem is solvable
// and its fewest-operation solution lies in the configured difficulty band.
func TestGenerateMeetsConfig(t *testing.T) {
	five := GenConfig{Count: 30, Numbers: 5, Min: 2, Max: 30, MinOps: 3, MaxOps: 4, MaxTarget: 500}
	zero := GenConfig{Count: 50, Numbers: 2, Min: 0, Max: 3, MinOps: 0, MaxOps: 1, MaxTarget: 9}
	tests := []struct {
		name string
		cfg  GenConfig
	}{
		{"default", DefaultGenConfig()},
		{"easy", EasyGenConfig()},
		{"five numbers", five},
		{"zeros and trivial targets", zero},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := Generate(tt.cfg, rand.New(rand.NewPCG(3, 0)))
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tt.cfg.Count {
				t.Fatalf("%d problems, want %d", len(ps), tt.cfg.Count)
			}
			seenOps := make(map[int]bool)
			for i, p := range ps {
				checkGenerated(t, tt.cfg, p)
				n, err := solve(p)
				if err != nil {
					t.Fatalf("problem %d %v: %v", i, p, err)
				}
				if k := n.ops(); k < tt.cfg.MinOps || k > tt.cfg.MaxOps {
					t.Fatalf("problem %d %v: fewest operations %d (%s) outside %d..%d", i, p, k, n.expr(), tt.cfg.MinOps, tt.cfg.MaxOps)
				} else {
					seenOps[k] = true
				}
			}
			if len(seenOps) != tt.cfg.MaxOps-tt.cfg.MinOps+1 {
				t.Errorf("difficulties seen %v, want every one in %d..%d", seenOps, tt.cfg.MinOps, tt.cfg.MaxOps)
			}
		})
	}
}

func checkGenerated(t *testing.T, cfg GenConfig, p Problem) {
	t.Helper()
	if len(p.Input) != cfg.Numbers {
		t.Fatalf("%v: %d numbers, want %d", p, len(p.Input), cfg.Numbers)
	}
	for _, v := range p.Input {
		if v < cfg.Min || v > cfg.Max {
			t.Fatalf("%v: number %d outside %d..%d", p, v, cfg.Min, cfg.Max)
		}
	}
	if p.Target < 1 || p.Target > cfg.MaxTarget {
		t.Fatalf("%v: target outside 1..%d", p, cfg.MaxTarget)
	}
}

func TestGenConfigValidate(t *testing.T) {
	ok := DefaultGenConfig()
	tests := []struct {
		name   string
		change func(*GenConfig)
	}{
		{"negative count", func(c *GenConfig) { c.Count = -1 }},
		{"no numbers", func(c *GenConfig) { c.Numbers = 0 }},
		{"too many numbers", func(c *GenConfig) { c.Numbers = MaxNumbers + 1 }},
		{"negative min", func(c *GenConfig) { c.Min = -1 }},
		{"min above max", func(c *GenConfig) { c.Min, c.Max = 5, 4 }},
		{"four numbers could overflow", func(c *GenConfig) { c.Max = 32767 }},
		{"six numbers could overflow", func(c *GenConfig) { c.Numbers, c.Max = 6, 812 }},
		{"negative min ops", func(c *GenConfig) { c.MinOps = -1 }},
		{"min ops above max ops", func(c *GenConfig) { c.MinOps, c.MaxOps = 3, 2 }},
		{"more ops than numbers allow", func(c *GenConfig) { c.MaxOps = c.Numbers }},
		{"max target zero", func(c *GenConfig) { c.MaxTarget = 0 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.change(&c)
			if err := c.Validate(); !errors.Is(err, ErrConfig) {
				t.Errorf("Validate = %v, want ErrConfig", err)
			}
			if _, err := Generate(c, rand.New(rand.NewPCG(1, 0))); !errors.Is(err, ErrConfig) {
				t.Errorf("Generate = %v, want ErrConfig", err)
			}
		})
	}
	for _, c := range []GenConfig{DefaultGenConfig(), EasyGenConfig()} {
		if err := c.Validate(); err != nil {
			t.Errorf("preset %+v: %v", c, err)
		}
	}
}

func TestGenerateExhausted(t *testing.T) {
	// 1 and 1 reach 0, 1 and 2; 1 needs no operation and 2 is above the target range.
	cfg := GenConfig{Count: 1, Numbers: 2, Min: 1, Max: 1, MinOps: 1, MaxOps: 1, MaxTarget: 1}
	if _, err := Generate(cfg, rand.New(rand.NewPCG(1, 0))); !errors.Is(err, ErrExhausted) {
		t.Errorf("Generate = %v, want ErrExhausted", err)
	}
}

func TestFitsInt64(t *testing.T) {
	tests := []struct {
		n, max int
		want   bool
	}{
		{4, 13, true},
		{4, 32766, true}, // 8·32767^4 < 2^63
		{4, 32767, false},
		{6, 811, true},
		{6, 812, false},
		{1, 1 << 62, true},
		{1, 1<<63 - 1, false},
	}
	for _, tt := range tests {
		if got := fitsInt64(tt.n, tt.max); got != tt.want {
			t.Errorf("fitsInt64(%d, %d) = %v, want %v", tt.n, tt.max, got, tt.want)
		}
	}
}

// TestLargestNumbersStayExact runs the search at the largest allowed values and checks it never
// overflows, so the bound fitsInt64 enforces is enough.
func TestLargestNumbersStayExact(t *testing.T) {
	for _, nums := range [][]int{{32766, 32766, 32765, 32766}, {811, 809, 811, 808, 811, 811}} {
		tb := newTable(nums)
		for _, level := range tb.levels {
			for _, m := range level {
				tb.fill(m)
			}
		}
		if tb.overflow {
			t.Errorf("%v overflowed", nums)
		}
	}
}
