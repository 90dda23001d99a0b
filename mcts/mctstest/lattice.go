package mctstest

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"tsd/mcts"
)

// Token ids of the Lattice's tiny vocabulary.
const (
	TokenPrompt  int32 = 1   // the prompt is Prompt() of these
	TokenStepEnd int32 = 2   // ends every step but the last; text ";"
	TokenEOS     int32 = 3   // ends the last step; no text
	TokenChoice0 int32 = 100 // choice i is TokenChoice0+i; text "c<i>"
)

// Lattice is a scripted reasoning problem with a known answer: Depth steps, each a choice among
// len(Probs) options (tokens: the choice, then TokenStepEnd, or TokenEOS after the last one).
// Reward is 1 for the completion that chose Goal at every step and −1 for any other.
type Lattice struct {
	Depth int
	Probs []float64 // the policy: option i has probability Probs[i] at every step

	Goal []int

	// Value is the value head after a step, given the choices so far; nil means 0 everywhere,
	// a value head that knows nothing.
	Value func(choices []int) float32
}

// Prompt is the root's tokens.
func (l *Lattice) Prompt() []int32 { return []int32{TokenPrompt, TokenPrompt, TokenPrompt} }

// Model is a Stepper that offers every option at every step, in order. With Samples equal to
// len(Probs) each expansion sees every option once.
func (l *Lattice) Model() *Model {
	return &Model{Steps: l.Steps, Decode: Decode}
}

// Steps lists the options after prefix.
func (l *Lattice) Steps(prefix []int32) ([]mcts.Continuation, error) {
	choices, done, err := l.parse(prefix[min(len(prefix), len(l.Prompt())):])
	switch {
	case err != nil:
		return nil, err
	case done || len(choices) >= l.Depth:
		return nil, fmt.Errorf("%w: completion %v is finished", ErrScript, choices)
	}
	last := len(choices) == l.Depth-1
	out := make([]mcts.Continuation, len(l.Probs))
	for i, p := range l.Probs {
		v := float32(0)
		if l.Value != nil {
			v = l.Value(append(choices[:len(choices):len(choices)], i))
		}
		end := TokenStepEnd
		if last {
			end = TokenEOS
		}
		tokens := []int32{TokenChoice0 + int32(i), end}
		out[i] = mcts.Continuation{
			Tokens:   tokens,
			LogProbs: []float32{float32(math.Log(p)), 0},
			Values:   []float32{v, v},
			EOS:      last,
			Text:     Decode(tokens),
		}
	}
	return out, nil
}

// Reward is the dense reward of a completion: 1 if it finished with the Goal's choices, −1
// otherwise (a wrong answer or none).
func (l *Lattice) Reward(tokens []int32, _ string) float64 {
	choices, done, err := l.parse(tokens)
	if err != nil || !done || len(choices) != len(l.Goal) {
		return -1
	}
	for i, c := range choices {
		if c != l.Goal[i] {
			return -1
		}
	}
	return 1
}

// GoalProbability is the chance that sampling from the policy at temperature temp finds Goal:
// what a search has to beat.
func (l *Lattice) GoalProbability(temp float64) float64 {
	z := 0.0
	for _, p := range l.Probs {
		z += math.Pow(p, 1/temp)
	}
	prob := 1.0
	for _, g := range l.Goal {
		prob *= math.Pow(l.Probs[g], 1/temp) / z
	}
	return prob
}

// parse reads choices from generated tokens; done reports a final TokenEOS.
func (l *Lattice) parse(tokens []int32) (choices []int, done bool, err error) {
	for i, tok := range tokens {
		switch {
		case tok == TokenEOS && i == len(tokens)-1:
			done = true
		case tok == TokenStepEnd:
		case tok >= TokenChoice0 && tok < TokenChoice0+int32(len(l.Probs)):
			choices = append(choices, int(tok-TokenChoice0))
		default:
			return nil, false, fmt.Errorf("%w: token %d at %d", ErrScript, tok, i)
		}
	}
	return choices, done, nil
}

// Decode is the text of Lattice tokens.
func Decode(tokens []int32) string {
	var b strings.Builder
	for _, tok := range tokens {
		switch {
		case tok == TokenStepEnd:
			b.WriteString(";")
		case tok >= TokenChoice0:
			b.WriteString("c" + strconv.Itoa(int(tok-TokenChoice0)))
		}
	}
	return b.String()
}
