package learner

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	tsdv1 "tsd/proto/tsd/v1"
)

// ledger records which rollouts each optimizer step trained on, one JSON line per rollout, in
// DataDir/trained.jsonl: an audit trail that makes "every acked rollout trained exactly once"
// checkable. Lines are synced before each checkpoint; on open, lines of steps past the checkpoint
// (a future a crash erased) are dropped, so the file always describes the checkpointed weights plus
// the steps since.
type ledger struct {
	f  *os.File
	w  *bufio.Writer
	at int64 // step of the last line written
}

// LedgerEntry is one line of trained.jsonl.
type LedgerEntry struct {
	Step    int64  `json:"step"`
	Actor   string `json:"actor"`
	Seq     uint64 `json:"seq"`
	Version uint64 `json:"version"`
}

// openLedger opens path, keeping only lines of steps ≤ checkpointStep. A torn last line (a crash
// while appending) is cut with a warning; damage anywhere before an intact line is an error.
func openLedger(path string, checkpointStep int64, log *slog.Logger) (*ledger, error) {
	kept, torn, err := readLedger(path, checkpointStep)
	if err != nil {
		return nil, err
	}
	if torn > 0 {
		log.Warn("cutting a torn last line from the ledger (a crash while appending)", "file", path, "line", torn)
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return nil, err
	}
	w := bufio.NewWriter(f)
	enc := json.NewEncoder(w)
	for _, e := range kept {
		if err := enc.Encode(e); err != nil {
			f.Close()
			return nil, err
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		f.Close()
		return nil, err
	}
	return &ledger{f: f, w: w, at: checkpointStep}, nil
}

// ErrLedger is a trained.jsonl damaged somewhere other than its last line: the exactly-once
// record cannot be trusted, and rewriting it would lose the lines after the damage.
var ErrLedger = errors.New("damaged ledger")

// ReadLedger returns the entries of a learner's trained.jsonl (all steps). A torn last line is
// left out; damage before an intact line is ErrLedger naming the file and line.
func ReadLedger(path string) ([]LedgerEntry, error) {
	out, _, err := readLedger(path, 1<<62)
	return out, err
}

// readLedger returns the entries of steps ≤ upTo, and the number of a torn last line it left out
// (0 for none).
func readLedger(path string, upTo int64) (_ []LedgerEntry, torn int, _ error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	return parseLedger(f, path, upTo)
}

// parseLedger reads ledger lines from r (path names it in errors); see readLedger.
func parseLedger(rd io.Reader, path string, upTo int64) (_ []LedgerEntry, torn int, _ error) {
	var out []LedgerEntry
	r := bufio.NewReader(rd)
	bad, badErr := 0, error(nil) // a damaged line, fatal unless it is the last
	for n := 1; ; n++ {
		line, err := r.ReadBytes('\n')
		if len(line) == 0 && err == io.EOF {
			break
		}
		if err != nil && err != io.EOF {
			return nil, 0, fmt.Errorf("%s: %w", path, err)
		}
		if bad != 0 {
			return nil, 0, fmt.Errorf("%w: %s line %d: %v (not the last line, so not a torn append: restore the file from a backup, or move it aside and lose the record)", ErrLedger, path, bad, badErr)
		}
		e, perr := parseLedgerLine(line)
		switch {
		case perr != nil:
			bad, badErr = n, perr
		case e.Step <= upTo:
			out = append(out, e)
		}
		if err == io.EOF {
			break
		}
	}
	return out, bad, nil
}

// parseLedgerLine decodes one line (with its newline, if any) and checks it is an entry.
func parseLedgerLine(line []byte) (LedgerEntry, error) {
	var e LedgerEntry
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, err
	}
	if dec.More() {
		return e, errors.New("more than one JSON value")
	}
	if e.Step < 1 || e.Seq < 1 || e.Actor == "" {
		return e, fmt.Errorf("entry %+v: step, seq and actor must be set", e)
	}
	return e, nil
}

func (l *ledger) add(step int64, batch []*tsdv1.Rollout) {
	enc := json.NewEncoder(l.w)
	for _, r := range batch {
		enc.Encode(LedgerEntry{Step: step, Actor: r.GetActorId(), Seq: r.GetSeq(), Version: r.GetPolicyVersion()}) //nolint:errcheck // sync reports write errors
	}
	l.at = step
}

func (l *ledger) sync() error {
	if err := l.w.Flush(); err != nil {
		return fmt.Errorf("ledger: %w", err)
	}
	return l.f.Sync()
}

func (l *ledger) close() {
	l.w.Flush() //nolint:errcheck
	l.f.Close()
}
