package algo

import (
	"errors"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

// TestTable pins the table: what each learner algorithm's actors send on the wire, and how it
// trains. The wire values are the API's, so a change here is a protocol change.
func TestTable(t *testing.T) {
	want := map[string]struct {
		actor string
		wire  tsdv1.Algo
		group bool
		loss  string
		value bool
	}{
		"mcts":      {"mcts", tsdv1.Algo_ALGO_MCTS, false, "", true},
		"best-of-n": {"best-of-n", tsdv1.Algo_ALGO_BEST_OF_N, false, "", true},
		"cispo":     {"group", tsdv1.Algo_ALGO_GROUP, true, LossCISPO, false},
		"grpo":      {"group", tsdv1.Algo_ALGO_GROUP, true, LossPPO, false},
	}
	if len(All) != len(want) {
		t.Fatalf("%d algorithms, want %d", len(All), len(want))
	}
	for name, w := range want {
		a, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(a.Rollout) != w.actor || a.Rollout.Wire() != w.wire || Wire(name) != w.wire || a.Group != w.group || a.Loss != w.loss || a.Value != w.value || a.Title == "" {
			t.Errorf("%s = %+v (wire %v)", name, a, a.Rollout.Wire())
		}
		if a.Group == a.Value {
			t.Errorf("%s: a group algorithm trains no value head, the others do", name)
		}
		if r, err := ParseRollout(w.actor); err != nil || r != a.Rollout {
			t.Errorf("ParseRollout(%q) = %q, %v", w.actor, r, err)
		}
	}
}

func TestUnknown(t *testing.T) {
	if _, err := Lookup("ppo"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Lookup(ppo): %v", err)
	}
	if Wire("ppo") != tsdv1.Algo_ALGO_UNSPECIFIED {
		t.Error("an unknown algorithm has a wire kind")
	}
	if _, err := ParseRollout("cispo"); err == nil || err.Error() != `algorithm "cispo": want mcts, group or best-of-n` {
		t.Errorf("ParseRollout(cispo): %v", err)
	}
	if Rollout("x").Wire() != tsdv1.Algo_ALGO_UNSPECIFIED {
		t.Error("an unknown rollout kind has a wire kind")
	}
}
