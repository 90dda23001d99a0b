package policy

import (
	"fmt"

	"tsd/countdown"
	"tsd/tokenizer"
)

// PromptStyle chooses how a Countdown problem is put to the model.
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

// Messages returns the chat for problem p.
func (s PromptStyle) Messages(p countdown.Problem) []tokenizer.Message {
	if s == Compact {
		return []tokenizer.Message{
			{Role: "system", Content: countdown.CompactSystemPrompt},
			{Role: "user", Content: countdown.CompactUserPrompt(p)},
		}
	}
	return []tokenizer.Message{
		{Role: "system", Content: countdown.SystemPrompt},
		{Role: "user", Content: countdown.UserPrompt(p)},
	}
}

// Tokens renders p's chat with the generation prompt and encodes it.
func (s PromptStyle) Tokens(tok *tokenizer.BPE, p countdown.Problem) []int32 {
	return tok.Encode(tokenizer.ChatML(s.Messages(p), true))
}
