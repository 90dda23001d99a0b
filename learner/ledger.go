package learner

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"

	"tsd/proto/tsd/v1"
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

// openLedger opens path, keeping only lines of steps ≤ checkpointStep.
func openLedger(path string, checkpointStep int64) (*ledger, error) {
	kept, err := readLedger(path, checkpointStep)
	if err != nil {
		return nil, err
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

// ReadLedger returns the entries of a learner's trained.jsonl (all steps).
func ReadLedger(path string) ([]LedgerEntry, error) { return readLedger(path, 1<<62) }

func readLedger(path string, upTo int64) ([]LedgerEntry, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []LedgerEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e LedgerEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			break // a torn last line from a crash
		}
		if e.Step <= upTo {
			out = append(out, e)
		}
	}
	return out, nil
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
