package tokenizer

import "strings"

// Message is one turn of a conversation.
type Message struct {
	Role    string // "system", "user", "assistant" or "tool"
	Content string
}

// The markers of ChatML. The Qwen2.5 vocabulary has them as special tokens, and so does the tiny
// one.
const (
	EndOfText = "<|endoftext|>" // ends a document; Qwen's padding token
	IMStart   = "<|im_start|>"  // opens a chat turn
	IMEnd     = "<|im_end|>"    // closes a chat turn; the end of a generated reply
)

// DefaultSystemPrompt is the system message Qwen2.5's chat template adds when a conversation has
// none.
const DefaultSystemPrompt = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."

// ChatML renders msgs as Qwen2.5's chat template does (without tools): each message as
// "<|im_start|>{role}\n{content}<|im_end|>\n", preceded by DefaultSystemPrompt unless the first
// message is a system message, and consecutive "tool" messages gathered into one user turn of
// <tool_response> blocks. With addGenerationPrompt it ends with "<|im_start|>assistant\n", where
// the model's reply begins. Roles are otherwise written as given.
func ChatML(msgs []Message, addGenerationPrompt bool) string {
	var b strings.Builder
	if len(msgs) == 0 || msgs[0].Role != "system" {
		turn(&b, "system", DefaultSystemPrompt)
	}
	for i, m := range msgs {
		if m.Role != "tool" {
			turn(&b, m.Role, m.Content)
			continue
		}
		if i == 0 || msgs[i-1].Role != "tool" {
			b.WriteString(IMStart + "user")
		}
		b.WriteString("\n<tool_response>\n")
		b.WriteString(m.Content)
		b.WriteString("\n</tool_response>")
		if i == len(msgs)-1 || msgs[i+1].Role != "tool" {
			b.WriteString(IMEnd + "\n")
		}
	}
	if addGenerationPrompt {
		b.WriteString(IMStart + "assistant\n")
	}
	return b.String()
}

func turn(b *strings.Builder, role, content string) {
	b.WriteString(IMStart)
	b.WriteString(role)
	b.WriteString("\n")
	b.WriteString(content)
	b.WriteString(IMEnd + "\n")
}
