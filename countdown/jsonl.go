package countdown

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// Solution is the solver's record for one problem, as `tsd countdown solve` writes it.
type Solution struct {
	Problem
	Solvable   bool   `json:"solvable"`
	Answer     string `json:"answer,omitempty"`     // fewest-operation expression
	Completion string `json:"completion,omitempty"` // WorkedSolution
	Ops        int    `json:"ops"`                  // operations in Answer: the difficulty; 0 if unsolvable
}

// GradeJSONL reads {"input":[...],"target":N,"completion":"..."} lines and writes one
// {"reward":dense,"correct":bool} line for each. It stops at the first bad line and names it.
func GradeJSONL(r io.Reader, w io.Writer) error {
	return mapJSONL(r, w, func(line []byte) (any, error) {
		var completion string
		p, err := decodeProblem(line, &completion)
		if err != nil {
			return nil, err
		}
		return Grade(p, completion), nil
	})
}

// SolveJSONL reads problem lines and writes a Solution line for each. A proven-unsolvable problem
// is a record with "solvable":false; a problem the search cannot decide (ErrTooLarge) is an error.
func SolveJSONL(r io.Reader, w io.Writer) error {
	return mapJSONL(r, w, func(line []byte) (any, error) {
		p, err := decodeProblem(line, nil)
		if err != nil {
			return nil, err
		}
		n, err := solve(p)
		switch {
		case errors.Is(err, ErrUnsolvable):
			return Solution{Problem: p}, nil
		case err != nil:
			return nil, err
		}
		return Solution{Problem: p, Solvable: true, Answer: n.expr(), Completion: n.worked(), Ops: n.ops()}, nil
	})
}

// mapJSONL writes fn's record for every line of r, flushing what it wrote even on error.
func mapJSONL(r io.Reader, w io.Writer, fn func(line []byte) (any, error)) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	enc.SetEscapeHTML(false) // keep <step> readable
	err := eachLine(r, func(line []byte) error {
		rec, err := fn(line)
		if err != nil {
			return err
		}
		return enc.Encode(rec)
	})
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("countdown: write: %w", ferr)
	}
	return err
}
