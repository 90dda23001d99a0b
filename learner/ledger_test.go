package learner

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// ledgerLines is n well-formed lines, two rollouts per step.
func ledgerLines(t testing.TB, n int) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b, err := json.Marshal(LedgerEntry{Step: int64(i/2 + 1), Actor: "a1", Seq: uint64(i + 1), Version: 1})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, append(b, '\n'))
	}
	return out
}

func writeLedger(t testing.TB, lines [][]byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trained.jsonl")
	if err := os.WriteFile(path, bytes.Join(lines, nil), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestLedgerDamagedMiddleLine: a damaged line with lines after it is an error naming the file and
// the line, and opening the ledger leaves the file as it was (the record of what was trained is
// not rewritten without those lines).
func TestLedgerDamagedMiddleLine(t *testing.T) {
	for name, damage := range map[string][]byte{
		"garbage":        []byte("#$%^garbage\n"),
		"half a line":    []byte(`{"step":6,"actor":"a1","se` + "\n"),
		"zeroed":         append(bytes.Repeat([]byte{0}, 40), '\n'),
		"empty line":     []byte("\n"),
		"no seq":         []byte(`{"step":6,"actor":"a1","version":1}` + "\n"),
		"two on a line":  []byte(`{"step":6,"actor":"a1","seq":12,"version":1}{"step":6}` + "\n"),
		"unknown fields": []byte(`{"stop":6,"actor":"a1","seq":12,"version":1}` + "\n"),
	} {
		t.Run(name, func(t *testing.T) {
			lines := ledgerLines(t, 24)
			lines[11] = damage
			path := writeLedger(t, lines)
			before, _ := os.ReadFile(path)
			_, err := ReadLedger(path)
			if !errors.Is(err, ErrLedger) || !strings.Contains(err.Error(), path+" line 12") {
				t.Fatalf("ReadLedger: %v, want ErrLedger naming %s line 12", err, path)
			}
			if _, err := openLedger(path, 100, discardLog()); !errors.Is(err, ErrLedger) {
				t.Fatalf("openLedger: %v, want ErrLedger", err)
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
				t.Fatalf("the damaged ledger was rewritten: %d bytes became %d", len(before), len(after))
			}
		})
	}
}

// TestLedgerTornLastLine: a torn last line (a crash while appending) is cut with a WARN naming the
// file; every line before it is kept.
func TestLedgerTornLastLine(t *testing.T) {
	lines := ledgerLines(t, 24)
	lines[23] = lines[23][:10]
	path := writeLedger(t, lines)
	var logged bytes.Buffer
	l, err := openLedger(path, 100, slog.New(slog.NewTextHandler(&logged, nil)))
	if err != nil {
		t.Fatal(err)
	}
	l.close()
	if !strings.Contains(logged.String(), "level=WARN") || !strings.Contains(logged.String(), path) {
		t.Errorf("no WARN naming %s: %q", path, logged.String())
	}
	got, err := ReadLedger(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 23 || got[22].Seq != 23 {
		t.Fatalf("kept %d entries, want the 23 before the torn line", len(got))
	}
}

// FuzzReadLedger: no content panics the reader; what it accepts has every line but the last
// intact, and a damaged line is reported with its file and line number.
func FuzzReadLedger(f *testing.F) {
	good := bytes.Join(ledgerLines(f, 4), nil)
	f.Add(good)
	f.Add(append(append([]byte(nil), good...), `{"step":3,"ac`...))
	f.Add([]byte("{}\n{}\n"))
	f.Add([]byte("\n\n\n"))
	f.Add([]byte(`{"step":1,"actor":"a","seq":1,"version":0}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		const path = "data/trained.jsonl"
		got, torn, err := parseLedger(bytes.NewReader(b), path, 1<<62)
		lines := bytes.SplitAfter(b, []byte("\n"))
		if len(lines[len(lines)-1]) == 0 {
			lines = lines[:len(lines)-1]
		}
		if err != nil {
			if !errors.Is(err, ErrLedger) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %v is not ErrLedger naming the file", err)
			}
			return
		}
		if torn != 0 && torn != len(lines) {
			t.Fatalf("cut line %d of %d", torn, len(lines))
		}
		for i, line := range lines[:len(lines)-min(torn, 1)] {
			if _, err := parseLedgerLine(line); err != nil {
				t.Fatalf("accepted damaged line %d: %v", i+1, err)
			}
		}
		if want := len(lines) - min(torn, 1); len(got) != want {
			t.Fatalf("%d entries from %d intact lines", len(got), want)
		}
	})
}
