package countdown

import (
	"fmt"
	"math/rand/v2"
)

// GenConfig sets what Generate makes. Difficulty is the fewest operations any solution needs,
// which the exhaustive search knows exactly, rather than how a target happened to be built.
type GenConfig struct {
	// Count is how many problems to make (0 or more).
	Count int
	// Numbers is how many input numbers a problem has, 1..MaxNumbers.
	Numbers int
	// Min and Max bound every input number, inclusive (0 ≤ Min ≤ Max); numbers are drawn
	// uniformly and may repeat. Max must keep 2^(Numbers−1)·(Max+1)^Numbers below 2^63, which
	// bounds every numerator and denominator the search meets, so it never leaves int64 (for
	// three numbers Max ≤ 1321121, four 32766, six 811).
	Min, Max int
	// MinOps and MaxOps bound the difficulty, 0 ≤ MinOps ≤ MaxOps < Numbers. A target of
	// difficulty 0 is one of the inputs; 1 is one operation away (3+4), and so on.
	MinOps, MaxOps int
	// MaxTarget bounds the target, 1..MaxTarget.
	MaxTarget int
}

// maxDraws is how many number sets Generate tries per problem before giving up on the config.
const maxDraws = 1000

// DefaultGenConfig resembles the source's sets: four numbers in 1..13 and targets that need one to
// three operations (the source's test set needs 0/1/2/3 operations in 2/13/26/59% of problems, has
// median target 44 and 99th percentile 938).
func DefaultGenConfig() GenConfig {
	return GenConfig{Count: 1000, Numbers: 4, Min: 1, Max: 13, MinOps: 1, MaxOps: 3, MaxTarget: 1000}
}

// EasyGenConfig makes warm-up problems a tiny model can learn: three numbers in 1..9 and targets
// up to 100 reachable with one or two operations, leaving harder problems for RL to improve on.
func EasyGenConfig() GenConfig {
	return GenConfig{Count: 1000, Numbers: 3, Min: 1, Max: 9, MinOps: 1, MaxOps: 2, MaxTarget: 100}
}

// Validate reports the first setting out of range.
func (c GenConfig) Validate() error {
	switch {
	case c.Count < 0:
		return fmt.Errorf("%w: count %d is negative", ErrConfig, c.Count)
	case c.Numbers < 1 || c.Numbers > MaxNumbers:
		return fmt.Errorf("%w: numbers %d not in 1..%d", ErrConfig, c.Numbers, MaxNumbers)
	case c.Min < 0 || c.Min > c.Max:
		return fmt.Errorf("%w: number range %d..%d", ErrConfig, c.Min, c.Max)
	case !fitsInt64(c.Numbers, c.Max):
		return fmt.Errorf("%w: %d numbers up to %d could overflow the exact search", ErrConfig, c.Numbers, c.Max)
	case c.MinOps < 0 || c.MinOps > c.MaxOps || c.MaxOps >= c.Numbers:
		return fmt.Errorf("%w: operations %d..%d not within 0..%d (numbers - 1)", ErrConfig, c.MinOps, c.MaxOps, c.Numbers-1)
	case c.MaxTarget < 1:
		return fmt.Errorf("%w: max target %d is below 1", ErrConfig, c.MaxTarget)
	}
	return nil
}

// Generate makes cfg.Count problems drawn from rng, so a seed fixes the set. For each problem it
// draws numbers, finds every target in 1..MaxTarget with its difficulty, picks a difficulty
// uniformly among those in MinOps..MaxOps that occur, then a target of that difficulty uniformly.
// Every problem is solvable by construction.
func Generate(cfg GenConfig, rng *rand.Rand) ([]Problem, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ps := make([]Problem, 0, cfg.Count)
	for len(ps) < cfg.Count {
		p, err := generateOne(cfg, rng)
		if err != nil {
			return nil, fmt.Errorf("problem %d: %w", len(ps), err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func generateOne(cfg GenConfig, rng *rand.Rand) (Problem, error) {
	for range maxDraws {
		nums := make([]int, cfg.Numbers)
		for i := range nums {
			nums[i] = cfg.Min + rng.IntN(cfg.Max-cfg.Min+1)
		}
		byOps := targetsByOps(nums, cfg.MaxOps, cfg.MaxTarget)
		var levels [][]int64
		for _, ts := range byOps[cfg.MinOps:] {
			if len(ts) > 0 {
				levels = append(levels, ts)
			}
		}
		if len(levels) == 0 {
			continue
		}
		ts := levels[rng.IntN(len(levels))]
		return Problem{Input: nums, Target: int(ts[rng.IntN(len(ts))])}, nil
	}
	return Problem{}, fmt.Errorf("%w: %d draws of %d numbers in %d..%d had no target in 1..%d needing %d..%d operations",
		ErrExhausted, maxDraws, cfg.Numbers, cfg.Min, cfg.Max, cfg.MaxTarget, cfg.MinOps, cfg.MaxOps)
}

// targetsByOps lists, for k = 0..maxOps, the integer targets in 1..maxTarget whose fewest
// operations is exactly k, in a deterministic order. The numbers must pass fitsInt64: a dropped
// overflowing expression could make a target look harder than it is.
func targetsByOps(nums []int, maxOps, maxTarget int) [][]int64 {
	t := newTable(nums)
	seen := make(map[int64]bool)
	byOps := make([][]int64, maxOps+1)
	for k := 0; k <= maxOps; k++ {
		for _, m := range t.levels[k] {
			t.fill(m)
			for _, n := range t.sets[m].nodes {
				v := n.val
				if !v.isInt() || v.num < 1 || v.num > int64(maxTarget) || seen[v.num] {
					continue
				}
				seen[v.num] = true
				byOps[k] = append(byOps[k], v.num)
			}
		}
	}
	if t.overflow {
		panic(fmt.Sprintf("countdown: search over %v overflowed despite the int64 bound", nums))
	}
	return byOps
}

// fitsInt64 reports whether 2^(n−1)·(max+1)^n < 2^63. By induction over an expression's tree,
// that bounds every numerator, denominator and cross product the search forms from n numbers of
// at most max: a leaf x is x/1 with both parts ≤ x+1, and combining parts bounded by B1 and B2
// gives parts and products bounded by 2·B1·B2 (the 2 from a sum of two cross products).
func fitsInt64(n, max int) bool {
	b := int64(1) << (n - 1)
	for range n {
		var ok bool
		if b, ok = mul64(b, int64(max)+1); !ok {
			return false
		}
	}
	return true
}
