package countdown

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

const (
	trainPath = "../data/countdown/train.jsonl"
	testPath  = "../data/countdown/test.jsonl"
)

func TestLoadShippedSets(t *testing.T) {
	tests := []struct {
		path  string
		count int
		first Problem
	}{
		{trainPath, 20000, Problem{Input: []int{2, 2, 7, 8}, Target: 38}},
		{testPath, 820, Problem{Input: []int{5, 13, 5, 9}, Target: 31}},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			ps, err := Load(tt.path)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != tt.count {
				t.Fatalf("%d problems, want %d", len(ps), tt.count)
			}
			if !reflect.DeepEqual(ps[0], tt.first) {
				t.Errorf("first = %+v, want %+v", ps[0], tt.first)
			}
			for i, p := range ps {
				if len(p.Input) != 4 {
					t.Fatalf("problem %d has %d numbers", i, len(p.Input))
				}
				for _, v := range p.Input {
					if v < 1 || v > 13 {
						t.Fatalf("problem %d: number %d outside 1..13", i, v)
					}
				}
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	good := `{"input":[1,2],"target":3}` + "\n"
	tests := []struct {
		name, data, wantMsg string
		want                error
	}{
		{"not json", good + "nope\n", "line 2:", ErrData},
		{"missing target", good + "\n" + `{"input":[1,2]}`, "line 3:", ErrData},
		{"missing input", `{"target":3}`, "line 1:", ErrData},
		{"fractional target", `{"input":[1],"target":1.5}`, "line 1:", ErrData},
		{"string number", `{"input":["1"],"target":1}`, "line 1:", ErrData},
		{"empty input", `{"input":[],"target":1}`, "no input numbers", ErrProblem},
		{"negative number", `{"input":[1,-2],"target":1}`, "input[1] = -2", ErrProblem},
		{"zero target", `{"input":[1],"target":0}`, "target 0", ErrProblem},
		{"line too long", `{"input":[1],"target":1,"x":"` + strings.Repeat("a", maxLineBytes) + `"}`, "after line 0", ErrData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(tt.data))
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %v, want %v mentioning %q", err, tt.want, tt.wantMsg)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.jsonl")
	if err := os.WriteFile(bad, []byte(`{"input":[1],"target":-1}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(bad); !errors.Is(err, ErrProblem) || !strings.Contains(err.Error(), "bad.jsonl: line 1") {
		t.Errorf("Load(bad) = %v", err)
	}
	if _, err := Load(filepath.Join(dir, "missing.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) = %v, want not-exist", err)
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	ps := []Problem{{Input: []int{5, 13, 5, 9}, Target: 31}, {Input: []int{0}, Target: 1}}
	var buf bytes.Buffer
	if err := Write(&buf, ps); err != nil {
		t.Fatal(err)
	}
	if want := "{\"input\":[5,13,5,9],\"target\":31}\n{\"input\":[0],\"target\":1}\n"; buf.String() != want {
		t.Errorf("Write = %q, want %q", buf.String(), want)
	}
	got, err := Read(&buf)
	if err != nil || !reflect.DeepEqual(got, ps) {
		t.Errorf("Read(Write(ps)) = %v, %v", got, err)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteReportsErrors(t *testing.T) {
	if err := Write(failingWriter{}, []Problem{{Input: []int{1}, Target: 1}}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("Write to a failing writer = %v", err)
	}
	if err := GradeJSONL(strings.NewReader(`{"input":[1],"target":1,"completion":""}`), failingWriter{}); err == nil {
		t.Error("GradeJSONL to a failing writer succeeded")
	}
}
