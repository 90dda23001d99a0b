package rolloutlog

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
)

// testRollout builds an MCTS-like rollout whose content depends only on (actor, seq, tokens).
func testRollout(actor string, seq uint64, tokens int) *tsdv1.Rollout {
	rng := rand.New(rand.NewPCG(seq, uint64(len(actor))))
	s := &tsdv1.Sample{Reward: rng.Float32()*2 - 1, Finished: true}
	for i := range tokens {
		s.CompletionIds = append(s.CompletionIds, rng.Int32N(151_000))
		s.Logprobs = append(s.Logprobs, -rng.Float32()*3)
		if i%16 == 15 {
			s.StepEnds = append(s.StepEnds, int32(i+1))
		}
	}
	return &tsdv1.Rollout{
		ActorId:         actor,
		Seq:             seq,
		PolicyVersion:   seq / 10,
		PromptId:        "countdown/train/" + actor,
		PromptIds:       []int32{151644, 8948, 198, 2610, 525},
		Algo:            tsdv1.Algo_ALGO_MCTS,
		Samples:         []*tsdv1.Sample{s},
		GeneratedTokens: int64(tokens * 40),
		CreatedUnixMs:   1_700_000_000_000 + int64(seq),
	}
}

// logBuffer is a slog destination tests can read while the log writes to it.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// quietOptions sends warnings to a buffer the test can inspect.
func quietOptions(segmentBytes int64) (Options, *logBuffer) {
	buf := &logBuffer{}
	return Options{SegmentBytes: segmentBytes, Logger: slog.New(slog.NewTextHandler(buf, nil))}, buf
}

func mustOpen(t testing.TB, dir string, opts Options) *Log {
	t.Helper()
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	return l
}

func mustClose(t testing.TB, l *Log) {
	t.Helper()
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// appendAll appends rollouts in order and checks that each is new.
func appendAll(t testing.TB, l *Log, rs []*tsdv1.Rollout) {
	t.Helper()
	for _, r := range rs {
		e, err := l.Append(context.Background(), r)
		if err != nil || e.Duplicate {
			t.Fatalf("Append(%s/%d) = %+v, %v; want a new record", r.ActorId, r.Seq, e, err)
		}
	}
}

// readAll reads every record from the log's first index on.
func readAll(t testing.TB, l *Log) []Record {
	t.Helper()
	recs, err := l.Read(l.First(), 1<<30)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	return recs
}

// checkRecords compares records with the rollouts expected at indices first, first+1, ….
func checkRecords(t testing.TB, got []Record, first uint64, want []*tsdv1.Rollout) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d records, want %d", len(got), len(want))
	}
	for i, rec := range got {
		if rec.Index != first+uint64(i) || !proto.Equal(rec.Rollout, want[i]) {
			t.Fatalf("record %d: index %d, %s/%d; want index %d, %s/%d", i, rec.Index,
				rec.Rollout.GetActorId(), rec.Rollout.GetSeq(), first+uint64(i), want[i].ActorId, want[i].Seq)
		}
	}
}

// series is seqs 1..n of one actor.
func series(actor string, n, tokens int) []*tsdv1.Rollout {
	rs := make([]*tsdv1.Rollout, n)
	for i := range rs {
		rs[i] = testRollout(actor, uint64(i+1), tokens)
	}
	return rs
}

// segmentFiles lists the segment paths of dir in order.
func segmentFiles(t testing.TB, dir string) []string {
	t.Helper()
	firsts, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	paths := make([]string, len(firsts))
	for i, f := range firsts {
		paths[i] = filepath.Join(dir, segmentName(f))
	}
	return paths
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t testing.TB, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
