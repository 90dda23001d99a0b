package countdown

import (
	"os"
	"strings"
	"testing"
)

// TestPromptsGolden pins the prompt texts; they shape what the model learns, so a change should
// be a deliberate golden update (go test ./countdown -run Prompts -update).
func TestPromptsGolden(t *testing.T) {
	p := Problem{Input: []int{5, 13, 5, 9}, Target: 31}
	got := strings.Join([]string{
		"SystemPrompt:", SystemPrompt, "UserPrompt:", UserPrompt(p),
		"CompactSystemPrompt:", CompactSystemPrompt, "CompactUserPrompt:", CompactUserPrompt(p), "",
	}, "\n")
	const path = "testdata/prompts.golden"
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("prompts differ from %s:\n%s", path, got)
	}
}

// TestPromptExamplesAreValid keeps the examples the prompts show in the verifier's format.
func TestPromptExamplesAreValid(t *testing.T) {
	p := Problem{Input: []int{5, 9, 2}, Target: 28}
	for name, prompt := range map[string]string{"full": SystemPrompt, "compact": CompactSystemPrompt} {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(prompt, "<step>") {
				t.Error("prompt shows no <step>")
			}
			if !Correct(p, prompt) {
				t.Errorf("the prompt's own <answer> example does not solve %v", p)
			}
		})
	}
	if got, want := CompactUserPrompt(p), "5 9 2 -> 28"; got != want {
		t.Errorf("CompactUserPrompt = %q, want %q", got, want)
	}
	if got, want := UserPrompt(p), "Numbers: 5, 9, 2\nTarget: 28"; got != want {
		t.Errorf("UserPrompt = %q, want %q", got, want)
	}
}
