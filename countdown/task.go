package countdown

import "fmt"

// PromptStyle chooses how a problem is put to the model.
type PromptStyle string

// Prompt styles. Full is the one for real models; Compact spends far fewer tokens, which matters
// for the tiny CPU models, where the prompt dominates the compute.
const (
	Full    PromptStyle = "full"
	Compact PromptStyle = "compact"
)

// ParsePromptStyle validates a style name.
func ParsePromptStyle(s string) (PromptStyle, error) {
	switch PromptStyle(s) {
	case Full, Compact:
		return PromptStyle(s), nil
	}
	return "", fmt.Errorf("prompt style %q: want full or compact", s)
}

// Task is one problem as an episode poses it to the model: its prompt in a style, where a
// reasoning step ends, and how a completion is graded. It implements episode.Task.
type Task struct {
	Problem Problem
	Style   PromptStyle
}

// Task poses p in style s.
func (s PromptStyle) Task(p Problem) Task { return Task{Problem: p, Style: s} }

// Prompt is the system and user message that pose the problem.
func (t Task) Prompt() (system, user string) {
	if t.Style == Compact {
		return CompactSystemPrompt, CompactUserPrompt(t.Problem)
	}
	return SystemPrompt, UserPrompt(t.Problem)
}

// StepStop ends one reasoning step: the sampler stops after it.
func (t Task) StepStop() string { return StepClose }

// Reward is the dense training reward of a completion.
func (t Task) Reward(completion string) float64 { return DenseReward(t.Problem, completion) }

// Correct reports whether the completion's answer reaches the target exactly.
func (t Task) Correct(completion string) bool { return Correct(t.Problem, completion) }
