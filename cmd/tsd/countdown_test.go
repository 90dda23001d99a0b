package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCountdownGrade(t *testing.T) {
	in := `{"input":[5,9,2],"target":28,"completion":"<step>9+5=14</step><answer>(9+5)*2</answer>"}
{"input":[5,9,2],"target":28,"completion":"<answer>9*2+5</answer>"}
{"input":[5,9,2],"target":28,"completion":"<answer>9*3</answer>"}
{"input":[5,9,2],"target":28,"completion":"thinking..."}
`
	got, err := runTSD(t, in, "countdown", "grade")
	if err != nil {
		t.Fatal(err)
	}
	want := `{"reward":1,"correct":true}
{"reward":0.6428571428571428,"correct":false}
{"reward":-0.9,"correct":false}
{"reward":-1,"correct":false}
`
	if got != want {
		t.Errorf("grade wrote\n%s\nwant\n%s", got, want)
	}
}

func TestCountdownGenSolveFiles(t *testing.T) {
	dir := t.TempDir()
	problems := filepath.Join(dir, "p.jsonl")
	solutions := filepath.Join(dir, "s.jsonl")
	if _, err := runTSD(t, "", "countdown", "gen", "--preset", "easy", "--n", "20", "--seed", "9", "--out", problems); err != nil {
		t.Fatal(err)
	}
	if _, err := runTSD(t, "", "countdown", "solve", "--in", problems, "--out", solutions); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(solutions)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 20 {
		t.Fatalf("%d solutions, want 20", len(lines))
	}
	for _, l := range lines {
		if !strings.Contains(l, `"solvable":true`) || !strings.Contains(l, "<step>") {
			t.Fatalf("solution line %s", l)
		}
	}
}

func TestCountdownGenSeedAndEnv(t *testing.T) {
	a, err := runTSD(t, "", "countdown", "gen", "--n", "5", "--seed", "3")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("TSD_SEED", "3")
	t.Setenv("TSD_N", "5")
	b, err := runTSD(t, "", "countdown", "gen")
	if err != nil {
		t.Fatal(err)
	}
	if a != b || strings.Count(a, "\n") != 5 {
		t.Errorf("flags gave\n%s\nenvironment gave\n%s", a, b)
	}
	c, _ := runTSD(t, "", "countdown", "gen", "--n", "5", "--seed", "4")
	if c == a {
		t.Error("seeds 3 and 4 gave the same problems")
	}
}

func TestCountdownErrors(t *testing.T) {
	tests := []struct {
		name, stdin, want string
		args              []string
	}{
		{"bad preset", "", "--preset", []string{"countdown", "gen", "--preset", "hard"}},
		{"bad config", "", "operations", []string{"countdown", "gen", "--max-ops", "4"}},
		{"missing input file", "", "no such file", []string{"countdown", "solve", "--in", "/nonexistent/p.jsonl"}},
		{"bad grade line", `{"input":[1],"target":1}`, "line 1", []string{"countdown", "grade"}},
		{"bad solve line", `{"input":[1],"target":0}`, "line 1", []string{"countdown", "solve"}},
		{"stray argument", "", "unknown command", []string{"countdown", "grade", "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runTSD(t, tt.stdin, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
}
