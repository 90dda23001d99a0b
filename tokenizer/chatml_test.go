package tokenizer

import "testing"

func TestChatML(t *testing.T) {
	sys := "<|im_start|>system\n" + DefaultSystemPrompt + "<|im_end|>\n"
	tests := []struct {
		name string
		msgs []Message
		gen  bool
		want string
	}{
		{"empty", nil, false, sys},
		{"empty with prompt", nil, true, sys + "<|im_start|>assistant\n"},
		{"default system", []Message{{"user", "What is 2+2?"}}, true,
			sys + "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"},
		{"own system", []Message{{"system", "Be brief."}, {"user", "Hi"}}, false,
			"<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"},
		{"later system is a turn", []Message{{"user", "a"}, {"system", "b"}}, false,
			sys + "<|im_start|>user\na<|im_end|>\n<|im_start|>system\nb<|im_end|>\n"},
		{"tool results gathered", []Message{{"user", "q"}, {"tool", "r1"}, {"tool", "r2"}, {"assistant", "x"}}, false,
			sys + "<|im_start|>user\nq<|im_end|>\n" +
				"<|im_start|>user\n<tool_response>\nr1\n</tool_response>\n<tool_response>\nr2\n</tool_response><|im_end|>\n" +
				"<|im_start|>assistant\nx<|im_end|>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ChatML(tt.msgs, tt.gen); got != tt.want {
				t.Errorf("ChatML() =\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

// TestChatMLMatchesQwenTemplate: golden.jsonl's chatml_full case is the output of Qwen2.5's own
// template for this conversation.
func TestChatMLMatchesQwenTemplate(t *testing.T) {
	got := ChatML([]Message{
		{"user", "Give me a short introduction to large language models."},
		{"assistant", "A large language model (LLM) is a neural network trained on vast amounts of text."},
		{"user", "Thanks! Now in one word?"},
	}, true)
	for _, c := range readFixture(t, qwenDir+"/golden.jsonl") {
		if c.Name == "chatml_full" {
			if got != c.Text {
				t.Errorf("ChatML() =\n%q\nwant\n%q", got, c.Text)
			}
			return
		}
	}
	t.Fatal("golden.jsonl has no chatml_full case")
}
