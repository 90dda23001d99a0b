package mcts

import "testing"

// bestChild must be pUCT as AlphaZero writes it (Silver et al. 2017, "Mastering the game of Go
// without human knowledge"): a = argmax Q(s,a) + c_puct·P(s,a)·sqrt(N(s))/(1+N(s,a)), here with
// first-play Q for unvisited children and virtual visits in N (and, as loss, in Q).
//
// The root has 10 visits and three children:
//
//	A: P=0.5, N=6, W=1.2      0.2 + 0.5·0.5·√10/7 = 0.3129
//	B: P=0.3, N=3, W=0.9      0.3 + 0.5·0.3·√10/4 = 0.4186
//	C: P=0.2, N=0, value 0.4  Q₀  + 0.5·0.2·√10/1 = Q₀ + 0.3162
func TestBestChildIsPUCT(t *testing.T) {
	const a, b, c = 1, 2, 3
	for _, tc := range []struct {
		name string
		edit func(*Config, []node)
		want int32
	}{
		{"seed settings", func(*Config, []node) {}, b},
		{"first play from the child's value: 0.4 + 0.3162", func(cfg *Config, _ []node) { cfg.FirstPlay = FirstPlayValue }, c},
		{"constant first play 0.2: 0.5162", func(cfg *Config, _ []node) { cfg.UnvisitedQ = 0.2 }, c},
		{"no exploration: Q alone", func(cfg *Config, _ []node) { cfg.CPUCT = 0 }, b},
		{"large exploration favours the unvisited", func(cfg *Config, _ []node) { cfg.CPUCT = 5 }, c},
		// One simulation in flight through the root and B, counted as a visit of value −1:
		// N(s) = 11; B: (0.9−1)/4 + 0.5·0.3·√11/5 = 0.0745; A: 0.3185; C: 0.3317.
		{"virtual loss on B", func(cfg *Config, n []node) { cfg.VirtualLoss = 1; n[0].pending, n[b].pending = 1, 1 }, c},
		// The same in-flight simulation with virtual visits off changes nothing.
		{"pending but no virtual visits", func(cfg *Config, n []node) { cfg.VirtualVisits = 0; n[0].pending, n[b].pending = 1, 1 }, b},
		{"ties go to the first child", func(cfg *Config, n []node) {
			for i := range n[1:] {
				n[1+i] = node{parent: 0, prior: 1.0 / 3, state: expanded}
			}
		}, a},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			nodes := []node{
				{parent: -1, visits: 10, firstChild: 1, numChildren: 3, state: expanded, prior: 1},
				{parent: 0, prior: 0.5, visits: 6, valueSum: 1.2, state: expanded},
				{parent: 0, prior: 0.3, visits: 3, valueSum: 0.9, state: expanded},
				{parent: 0, prior: 0.2, value: 0.4},
			}
			tc.edit(&cfg, nodes)
			tree, err := NewTree(cfg, []int32{1}, func([]int32, string) float64 { return 0 })
			if err != nil {
				t.Fatal(err)
			}
			tree.nodes = nodes
			if got := tree.bestChild(&tree.nodes[0]); got != tc.want {
				t.Errorf("bestChild = %d, want %d", got, tc.want)
			}
		})
	}
}
