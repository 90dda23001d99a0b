// Package episode is the task layer: a Task poses a problem (prompt, where a reasoning step ends,
// how a completion is graded), and an episode is one attempt at it: a tree search or a sample,
// graded, its generated tokens counted. The actor, `tsd eval` and `tsd mcts` run episodes through
// this package, so all three prompt, grade and count alike.
package episode

import (
	"context"
	"strings"

	"tsd/mcts"
	"tsd/model"
	"tsd/tokenizer"
)

// Task is one problem put to the model (countdown.Task implements it).
type Task interface {
	// Prompt is the system and user message that pose the problem.
	Prompt() (system, user string)
	// StepStop is the text that ends one reasoning step ("" = steps end only at EOS or length).
	StepStop() string
	// Reward is the dense training reward of a completion's text.
	Reward(completion string) float64
	// Correct reports whether the completion solves the problem exactly.
	Correct(completion string) bool
}

// Prompt renders t's chat as ChatML with the generation prompt and encodes it.
func Prompt(tok *tokenizer.BPE, t Task) []int32 {
	system, user := t.Prompt()
	return tok.Encode(tokenizer.ChatML([]tokenizer.Message{
		{Role: "system", Content: system},
		{Role: "user", Content: user},
	}, true))
}

// Graded is an episode's outcome.
type Graded struct {
	Text    string
	Reward  float64 // the task's dense reward of Text
	Correct bool
	// Generated counts every token the episode generated: a sample's length, or for a search
	// every token of every expansion, so searches and samples compare at equal token budgets.
	Generated int64
}

// Holder keeps a prompt's KV cache while its expansions run (policy.Policy implements it).
type Holder interface {
	Hold(prompt []int32)
	Release(prompt []int32)
}

// Searched is a search episode: the search's result (tree, chosen trajectory, statistics) and
// the grade of the trajectory.
type Searched struct {
	mcts.Result
	Graded
}

// Search runs one tree search on prompt (t's, see Prompt) with steps from st, prompt held on h
// while it runs, and grades the chosen trajectory. An empty cfg.StopText becomes t.StepStop().
func Search(ctx context.Context, h Holder, st mcts.Stepper, t Task, prompt []int32, cfg mcts.Config) (Searched, error) {
	if cfg.StopText == "" {
		cfg.StopText = t.StepStop()
	}
	h.Hold(prompt)
	defer h.Release(prompt)
	res, err := mcts.Search(ctx, cfg, prompt, st, func(_ []int32, text string) float64 { return t.Reward(text) })
	if err != nil {
		return Searched{}, err
	}
	g := grade(t, res.Trajectory.Text)
	for _, n := range res.Tree.Export().Nodes {
		g.Generated += int64(n.Tokens)
	}
	return Searched{Result: res, Graded: g}, nil
}

// Sampler draws n completions of each prompt (policy.Policy implements it).
type Sampler interface {
	Sample(ctx context.Context, prompts [][]int32, n int, opts model.SampleOptions) ([][]model.Completion, error)
}

// Sampled is a sample episode: the completion and its grade.
type Sampled struct {
	model.Completion
	Graded
}

// Sample draws n completions of each task's prompt in one call to s and grades them:
// out[i][j] is prompt i's j-th sample.
func Sample(ctx context.Context, s Sampler, tok *tokenizer.BPE, tasks []Task, prompts [][]int32, n int, opts model.SampleOptions) ([][]Sampled, error) {
	comps, err := s.Sample(ctx, prompts, n, opts)
	if err != nil {
		return nil, err
	}
	out := make([][]Sampled, len(comps))
	for i, cs := range comps {
		out[i] = make([]Sampled, len(cs))
		for j, c := range cs {
			g := grade(tasks[i], tok.Decode(c.Tokens))
			g.Generated = int64(len(c.Tokens))
			out[i][j] = Sampled{Completion: c, Graded: g}
		}
	}
	return out, nil
}

func grade(t Task, text string) Graded {
	return Graded{Text: text, Reward: t.Reward(text), Correct: t.Correct(text)}
}

// StepEnds returns the offset just past each token that completes an occurrence of stop in the
// text of toks (none for an empty stop). Tokens are decoded one at a time: a character split
// across tokens decodes wrongly that way, but an ASCII marker survives. It runs in time linear in
// the text: only the tail that could still hold the start of a marker is searched again.
func StepEnds(tok *tokenizer.BPE, toks []int32, stop string) []int32 {
	if stop == "" {
		return nil
	}
	var ends []int32
	var text strings.Builder
	from := 0 // where the next occurrence can start
	for i := range toks {
		text.WriteString(tok.Decode(toks[i : i+1 : i+1]))
		s := text.String()
		found := false
		for {
			k := strings.Index(s[from:], stop)
			if k < 0 {
				break
			}
			from += k + len(stop)
			found = true
		}
		if found {
			ends = append(ends, int32(i+1))
		}
		// No occurrence starts before len(s)−len(stop)+1 except one not yet complete.
		from = max(from, len(s)-len(stop)+1)
	}
	return ends
}
