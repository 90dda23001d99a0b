package countdown

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestJSONLErrors(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(r *strings.Reader, w *bytes.Buffer) error
		data    string
		want    error
		wantMsg string
		wantOut int // lines written before the error
	}{
		{"grade without completion", grade, `{"input":[1],"target":1,"completion":"<answer>1</answer>"}` + "\n" + `{"input":[1],"target":1}`, ErrData, "line 2:", 1},
		{"grade with a non-string completion", grade, `{"input":[1],"target":1,"completion":5}`, ErrData, "line 1:", 0},
		{"grade bad problem", grade, `{"input":[1],"target":0,"completion":""}`, ErrProblem, "line 1:", 0},
		{"solve bad json", solveLines, `{"input":[1],"target":1}` + "\n\n" + `{"input":`, ErrData, "line 3:", 1},
		{"solve too large", solveLines, `{"input":[1,2,3,4,5,6,7],"target":1}`, ErrTooLarge, "line 1:", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := tt.fn(strings.NewReader(tt.data), &out)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error = %v, want %v mentioning %q", err, tt.want, tt.wantMsg)
			}
			if n := strings.Count(out.String(), "\n"); n != tt.wantOut {
				t.Errorf("%d lines written before the error, want %d", n, tt.wantOut)
			}
		})
	}
}

func grade(r *strings.Reader, w *bytes.Buffer) error      { return GradeJSONL(r, w) }
func solveLines(r *strings.Reader, w *bytes.Buffer) error { return SolveJSONL(r, w) }
