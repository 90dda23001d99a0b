package countdown

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
)

// Problem is one Countdown puzzle: reach Target from a sub-multiset of Input. Its JSON form is the
// source's, {"input":[5,13,5,9],"target":31}.
type Problem struct {
	Input  []int `json:"input"`
	Target int   `json:"target"`
}

// maxLineBytes bounds one JSONL line; graded completions can be long, problems never are.
const maxLineBytes = 16 << 20

// Validate reports why p is not a playable problem. The target must be positive because the dense
// reward divides by it.
func (p Problem) Validate() error {
	if len(p.Input) == 0 {
		return fmt.Errorf("%w: no input numbers", ErrProblem)
	}
	for i, v := range p.Input {
		if v < 0 {
			return fmt.Errorf("%w: input[%d] = %d is negative", ErrProblem, i, v)
		}
	}
	if p.Target < 1 {
		return fmt.Errorf("%w: target %d is below 1", ErrProblem, p.Target)
	}
	return nil
}

// Load reads a JSONL problem file such as data/countdown/test.jsonl.
func Load(path string) ([]Problem, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("countdown: load: %w", err)
	}
	defer f.Close()
	ps, err := Read(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ps, nil
}

// Read parses JSONL problems, one per line; blank lines are skipped. Errors name the line.
func Read(r io.Reader) ([]Problem, error) {
	var ps []Problem
	err := eachLine(r, func(line []byte) error {
		p, err := decodeProblem(line, nil)
		if err != nil {
			return err
		}
		ps = append(ps, p)
		return nil
	})
	return ps, err
}

// Write writes problems as JSONL in the source's form.
func Write(w io.Writer, ps []Problem) error {
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	for _, p := range ps {
		if err := enc.Encode(p); err != nil {
			return fmt.Errorf("countdown: write: %w", err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("countdown: write: %w", err)
	}
	return nil
}

// problemRecord tells a missing field from a zero one.
type problemRecord struct {
	Input      *[]int  `json:"input"`
	Target     *int    `json:"target"`
	Completion *string `json:"completion"`
}

// decodeProblem parses one line into a valid problem; if completion is non-nil the line must also
// carry a "completion" string, stored there.
func decodeProblem(line []byte, completion *string) (Problem, error) {
	var rec problemRecord
	if err := json.Unmarshal(line, &rec); err != nil {
		return Problem{}, fmt.Errorf("%w: %v", ErrData, err)
	}
	if rec.Input == nil || rec.Target == nil {
		return Problem{}, fmt.Errorf("%w: want {\"input\":[...],\"target\":N}", ErrData)
	}
	p := Problem{Input: *rec.Input, Target: *rec.Target}
	if err := p.Validate(); err != nil {
		return Problem{}, err
	}
	if completion != nil {
		if rec.Completion == nil {
			return Problem{}, fmt.Errorf("%w: missing \"completion\"", ErrData)
		}
		*completion = *rec.Completion
	}
	return p, nil
}

// eachLine calls fn on every non-blank line of r and prefixes its error with the line number.
func eachLine(r io.Reader, fn func(line []byte) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if err := fn(line); err != nil {
			return fmt.Errorf("line %d: %w", n, err)
		}
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%w: after line %d: %v", ErrData, n, err)
	}
	return nil
}
