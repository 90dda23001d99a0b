package tokenizer

import "testing"

func TestAppendLossy(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"valid", "héllo 😀", "héllo 😀"},
		{"literal replacement char kept", "a\uFFFDb", "a\uFFFDb"},
		{"truncated 4-byte is one", "Hello \xF0\x90\x80World", "Hello \uFFFDWorld"}, // Rust's doc example
		{"truncated at end", "a\xE2\x82", "a\uFFFD"},
		{"stray continuations each", "a\x80\x80b", "a\uFFFD\uFFFDb"},
		{"overlong lead", "\xC0\xAF", "\uFFFD\uFFFD"},
		{"surrogate half", "\xED\xA0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"E0 needs A0..BF", "\xE0\x80\x80", "\uFFFD\uFFFD\uFFFD"},
		{"F4 above U+10FFFF", "\xF4\x90\x80\x80", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		{"F5 never valid", "\xF5", "\uFFFD"},
		{"cut emoji then ASCII", "\xF0\x9F\x98x", "\uFFFDx"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(appendLossy(nil, []byte(tt.in))); got != tt.want {
				t.Errorf("appendLossy(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if got := validUTF8(tt.in); got != tt.want {
				t.Errorf("validUTF8(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
