package episode

import (
	"context"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"tsd/countdown"
	"tsd/mcts"
	"tsd/mcts/mctstest"
	"tsd/model"
	"tsd/tokenizer"
)

var _ Task = countdown.Task{}

// latticeTask poses a mctstest.Lattice: its texts are "c<i>;" steps, the goal path's text is
// correct and rewarded 1.
type latticeTask struct {
	l    *mctstest.Lattice
	stop string
}

func (t latticeTask) Prompt() (string, string) { return "system", "user" }
func (t latticeTask) StepStop() string         { return t.stop }
func (t latticeTask) Reward(text string) float64 {
	if t.Correct(text) {
		return 1
	}
	return -1
}
func (t latticeTask) Correct(text string) bool {
	want := make([]string, len(t.l.Goal))
	for i, g := range t.l.Goal {
		want[i] = "c" + string(rune('0'+g))
	}
	return text == strings.Join(want, ";")
}

// holds records Hold and Release.
type holds struct{ held, released int }

func (h *holds) Hold([]int32)    { h.held++ }
func (h *holds) Release([]int32) { h.released++ }

// stops records the stop text of every request.
type stops struct {
	mcts.Stepper
	seen []string
}

func (s *stops) Step(ctx context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	for _, r := range reqs {
		s.seen = append(s.seen, r.Stop)
	}
	return s.Stepper.Step(ctx, reqs)
}

// TestSearchIsTheSearch: an episode's search is mcts.Search with the task's reward, its grade is
// the task's on the chosen text, it counts every token the tree generated, holds the prompt for
// the search's length, and an empty step stop becomes the task's.
func TestSearchIsTheSearch(t *testing.T) {
	l := &mctstest.Lattice{Depth: 3, Probs: []float64{0.5, 0.3, 0.2}, Goal: []int{1, 2, 0}}
	task := latticeTask{l: l, stop: ";"}
	cfg := mcts.DefaultConfig()
	cfg.Samples, cfg.Workers, cfg.Iterations, cfg.Seed = 3, 2, 20, 9
	m := &stops{Stepper: l.Model()}
	var h holds
	got, err := Search(context.Background(), &h, m, task, l.Prompt(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := cfg
	want.StopText = ";"
	direct, err := mcts.Search(context.Background(), want, l.Prompt(), l.Model(), l.Reward)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Trajectory, direct.Trajectory) || !reflect.DeepEqual(got.Tree.Export(), direct.Tree.Export()) {
		t.Fatalf("episode trajectory %+v, mcts.Search's %+v", got.Trajectory, direct.Trajectory)
	}
	var tokens int64
	for _, n := range direct.Tree.Export().Nodes {
		tokens += int64(n.Tokens)
	}
	if got.Text != direct.Trajectory.Text || got.Reward != direct.Trajectory.Reward || got.Correct != task.Correct(got.Text) || got.Generated != tokens || tokens == 0 {
		t.Errorf("graded %+v; text %q reward %v, %d tokens", got.Graded, direct.Trajectory.Text, direct.Trajectory.Reward, tokens)
	}
	if !got.Correct {
		t.Errorf("the search missed the lattice's goal: %q", got.Text)
	}
	if h.held != 1 || h.released != 1 {
		t.Errorf("held %d, released %d", h.held, h.released)
	}
	for _, s := range m.seen {
		if s != ";" {
			t.Fatalf("a request stopped at %q, want the task's %q", s, ";")
		}
	}
	cfg.StopText = "!" // an explicit stop wins over the task's
	m.seen = nil
	if _, err := Search(context.Background(), &h, m, task, l.Prompt(), cfg); err != nil {
		t.Fatal(err)
	}
	if len(m.seen) == 0 || m.seen[0] != "!" {
		t.Errorf("requests stopped at %q, want !", m.seen)
	}
}

func TestSearchError(t *testing.T) {
	l := &mctstest.Lattice{Depth: 2, Probs: []float64{1}, Goal: []int{0, 0}}
	bad := mcts.DefaultConfig()
	bad.Samples = 0
	var h holds
	if _, err := Search(context.Background(), &h, l.Model(), latticeTask{l: l}, l.Prompt(), bad); err == nil {
		t.Fatal("a bad config searched")
	}
	if h.held != h.released {
		t.Errorf("held %d, released %d", h.held, h.released)
	}
}

func tinyTok(t testing.TB) *tokenizer.BPE {
	t.Helper()
	dir := t.TempDir()
	if err := tokenizer.WriteTiny(dir); err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// scripted answers prompt i with texts[i], n times.
type scripted struct {
	tok   *tokenizer.BPE
	texts []string
}

func (s scripted) Sample(_ context.Context, prompts [][]int32, n int, _ model.SampleOptions) ([][]model.Completion, error) {
	out := make([][]model.Completion, len(prompts))
	for i := range prompts {
		for range n {
			out[i] = append(out[i], model.Completion{Tokens: s.tok.Encode(s.texts[i]), Stop: model.StopEOS})
		}
	}
	return out, nil
}

func TestSampleGrades(t *testing.T) {
	tok := tinyTok(t)
	tasks := []Task{
		countdown.Compact.Task(countdown.Problem{Input: []int{2, 3}, Target: 6}),
		countdown.Full.Task(countdown.Problem{Input: []int{4, 5}, Target: 20}),
	}
	texts := []string{"<step>2*3=6</step><answer>2*3</answer>", "<answer>4+5</answer>"}
	prompts := [][]int32{Prompt(tok, tasks[0]), Prompt(tok, tasks[1])}
	out, err := Sample(context.Background(), scripted{tok, texts}, tok, tasks, prompts, 2, model.SampleOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 2 || len(out[0]) != 2 || len(out[1]) != 2 {
		t.Fatalf("shape %v", out)
	}
	for i, ss := range out {
		for _, s := range ss {
			p := tasks[i].(countdown.Task).Problem
			g := countdown.Grade(p, texts[i])
			if s.Text != texts[i] || s.Reward != g.Reward || s.Correct != g.Correct || s.Generated != int64(len(s.Completion.Tokens)) {
				t.Errorf("prompt %d: %+v, want %+v", i, s.Graded, g)
			}
		}
	}
	if !out[0][0].Correct || out[1][0].Correct {
		t.Error("2*3 reaches 6 and 4+5 misses 20")
	}
}

// TestPromptIsChatML: a task's prompt is its two messages as ChatML with the generation prompt.
func TestPromptIsChatML(t *testing.T) {
	tok := tinyTok(t)
	task := countdown.Compact.Task(countdown.Problem{Input: []int{5, 13, 5, 9}, Target: 31})
	want := "<|im_start|>system\n" + countdown.CompactSystemPrompt + "<|im_end|>\n<|im_start|>user\n5 13 5 9 -> 31<|im_end|>\n<|im_start|>assistant\n"
	if got := tok.Decode(Prompt(tok, task)); got != want {
		t.Errorf("prompt %q, want %q", got, want)
	}
}

// stepEndsQuadratic is the step counter the actor used before: it re-counts the whole text after
// every token.
func stepEndsQuadratic(tok *tokenizer.BPE, toks []int32, stop string) []int32 {
	var ends []int32
	var text strings.Builder
	seen := 0
	for i := range toks {
		text.WriteString(tok.Decode(toks[i : i+1 : i+1]))
		if n := strings.Count(text.String(), stop); n > seen {
			seen = n
			ends = append(ends, int32(i+1))
		}
	}
	return ends
}

// TestStepEndsMatchesRecount: the incremental step counter finds exactly the ends the old
// re-counting one did, on random token strings rich in markers and their pieces, and on stops
// that overlap themselves.
func TestStepEndsMatchesRecount(t *testing.T) {
	tok := tinyTok(t)
	pieces := []string{"<step>", "</step>", "</", "step", ">", "<", "/", "s", "1+2=3", "<answer>", "x", "a", "aa"}
	rng := rand.New(rand.NewPCG(1, 2))
	for trial := range 500 {
		var b strings.Builder
		for range rng.IntN(40) {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		}
		var toks []int32
		if trial%2 == 0 { // one byte per token: markers split across tokens
			for _, c := range []byte(b.String()) {
				toks = append(toks, tok.Encode(string(c))...)
			}
		} else {
			toks = tok.Encode(b.String())
		}
		for _, stop := range []string{countdown.StepClose, "aa", "a", "s"} {
			got, want := StepEnds(tok, toks, stop), stepEndsQuadratic(tok, toks, stop)
			if !slices.Equal(got, want) {
				t.Fatalf("%q stop %q: ends %v, want %v", b.String(), stop, got, want)
			}
		}
	}
	if StepEnds(tok, tok.Encode("<step>1</step>"), "") != nil {
		t.Error("an empty stop marks steps")
	}
}

// BenchmarkStepEnds: a 512-token completion of worked steps; the old re-count is quadratic in
// its length.
func BenchmarkStepEnds(b *testing.B) {
	tok := tinyTok(b)
	toks := tok.Encode(strings.Repeat("<step>12+34=46</step>", 60))[:512]
	b.Run("incremental", func(b *testing.B) {
		for range b.N {
			StepEnds(tok, toks, countdown.StepClose)
		}
	})
	b.Run("recount", func(b *testing.B) {
		for range b.N {
			stepEndsQuadratic(tok, toks, countdown.StepClose)
		}
	})
}
