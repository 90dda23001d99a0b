package rolloutlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

func TestDedupSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	l := mustOpen(t, dir, opts)
	appendAll(t, l, series("a", 5, 3))
	mustClose(t, l)

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	for seq := uint64(1); seq <= 5; seq++ {
		if e, err := l.Append(context.Background(), testRollout("a", seq, 3)); err != nil || !e.Duplicate {
			t.Errorf("Append(a/%d) after reopen = %+v, %v; want a duplicate", seq, e, err)
		}
	}
	if e, err := l.Append(context.Background(), testRollout("a", 6, 3)); err != nil || e.Index != 6 {
		t.Errorf("Append(a/6) = %+v, %v; want index 6", e, err)
	}
}

func TestTruncateBefore(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(recoverySegmentBytes)
	l := mustOpen(t, dir, opts)
	// "early" appears only in the first records, so truncation deletes all of it.
	want := append(series("early", 10, 30), series("late", 40, 30)...)
	appendAll(t, l, want)
	segs := len(segmentFiles(t, dir))

	if err := l.TruncateBefore(l.Next() + 1); !errors.Is(err, ErrInvalidArgument) {
		t.Errorf("TruncateBefore beyond Next = %v, want ErrInvalidArgument", err)
	}
	if err := l.TruncateBefore(2); err != nil || len(segmentFiles(t, dir)) != segs {
		t.Errorf("TruncateBefore(2) = %v with %d segments left; want no segment deleted", err, len(segmentFiles(t, dir)))
	}
	cut := uint64(30)
	if err := l.TruncateBefore(cut); err != nil {
		t.Fatal(err)
	}
	first := l.First()
	if first > cut || first < 2 || len(segmentFiles(t, dir)) >= segs {
		t.Fatalf("after TruncateBefore(%d): First %d, %d of %d segments; want the segments below %d gone",
			cut, first, len(segmentFiles(t, dir)), segs, cut)
	}
	if _, err := l.Read(first-1, 1); !errors.Is(err, ErrTruncated) {
		t.Errorf("Read below First = %v, want ErrTruncated", err)
	}
	checkRecords(t, readAll(t, l), first, want[first-1:])
	checkDeduped(t, l, "early", 10)

	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	if l.First() != first {
		t.Errorf("First after reopen = %d, want %d", l.First(), first)
	}
	checkDeduped(t, l, "early", 10)
	checkDeduped(t, l, "late", 40)

	// Truncating everything keeps the segment being written, and the index goes on.
	next := l.Next()
	if err := l.TruncateBefore(next); err != nil {
		t.Fatal(err)
	}
	mustClose(t, l)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if l.Next() != next || len(segmentFiles(t, dir)) != 1 {
		t.Errorf("after truncating all: Next %d, %d segments; want %d and 1", l.Next(), len(segmentFiles(t, dir)), next)
	}
	checkDeduped(t, l, "early", 10)
	checkDeduped(t, l, "late", 40)
}

// checkDeduped asserts that the log remembers the actor's highest seq and refuses it again.
func checkDeduped(t *testing.T, l *Log, actor string, highest uint64) {
	t.Helper()
	if got := l.LastSeq(actor); got != highest {
		t.Errorf("LastSeq(%s) = %d, want %d", actor, got, highest)
	}
	if e, err := l.Append(context.Background(), testRollout(actor, highest, 3)); err != nil || !e.Duplicate {
		t.Errorf("Append(%s/%d) = %+v, %v; want a duplicate", actor, highest, e, err)
	}
}

func TestConcurrentAppends(t *testing.T) {
	const actors, perActor = 16, 60
	dir := t.TempDir()
	opts, _ := quietOptions(16 << 10) // rotation happens inside batches too
	l := mustOpen(t, dir, opts)
	entries := make([][]Entry, actors)
	var wg sync.WaitGroup
	for a := range actors {
		wg.Go(func() {
			for _, r := range series(fmt.Sprint("actor-", a), perActor, 20) {
				e, err := l.Append(context.Background(), r)
				if err != nil {
					t.Errorf("Append(%s/%d): %v", r.ActorId, r.Seq, err)
					return
				}
				entries[a] = append(entries[a], e)
			}
		})
	}
	wg.Wait()
	// With sixteen appenders and an fsync per commit, commits must have been shared.
	if st := l.Stats(); st.Appended != actors*perActor || st.Commits >= st.Appended || st.Commits == 0 {
		t.Errorf("Stats = %+v; want %d appended in fewer commits", st, actors*perActor)
	}
	mustClose(t, l)

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	recs := readAll(t, l)
	if len(recs) != actors*perActor {
		t.Fatalf("%d records after reopen, want %d", len(recs), actors*perActor)
	}
	for a := range actors {
		for i, e := range entries[a] {
			r := recs[e.Index-1].Rollout
			if e.Duplicate || r.ActorId != fmt.Sprint("actor-", a) || r.Seq != uint64(i+1) {
				t.Fatalf("actor-%d seq %d: entry %+v holds %s/%d", a, i+1, e, r.ActorId, r.Seq)
			}
			if i > 0 && e.Index <= entries[a][i-1].Index {
				t.Fatalf("actor-%d: seq %d at index %d, not after seq %d", a, i+1, e.Index, i)
			}
		}
		if got := l.LastSeq(fmt.Sprint("actor-", a)); got != perActor {
			t.Errorf("LastSeq(actor-%d) = %d, want %d", a, got, perActor)
		}
	}
}

// TestRetryRacesOriginal sends every rollout twice at once, as a reconnecting actor may while
// its first stream's Append is still in flight: each must be written exactly once.
func TestRetryRacesOriginal(t *testing.T) {
	const n = 200
	opts, _ := quietOptions(0)
	opts.NoSync = true
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	written := make([][]uint64, 2)
	var wg sync.WaitGroup
	for g := range written {
		wg.Go(func() {
			for _, r := range series("a", n, 5) {
				e, err := l.Append(context.Background(), r)
				if err != nil {
					t.Errorf("Append(a/%d): %v", r.Seq, err)
					return
				}
				if !e.Duplicate {
					written[g] = append(written[g], r.Seq)
				}
			}
		})
	}
	wg.Wait()
	if got := len(written[0]) + len(written[1]); got != n {
		t.Errorf("%d rollouts written for %d seqs (%d and %d per sender)", got, n, len(written[0]), len(written[1]))
	}
	want := series("a", n, 5)
	checkRecords(t, readAll(t, l), 1, want)
}

func TestAppendCanceled(t *testing.T) {
	opts, _ := quietOptions(0)
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	// Either the canceled context wins, or the append made it; never anything else.
	e, err := l.Append(ctx, testRollout("a", 1, 3))
	if err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with a canceled context = %v", err)
	}
	if err == nil && e.Index != 1 {
		t.Fatalf("Append with a canceled context = %+v", e)
	}
	// The retry is recognised if the first one was written, and written if it was not.
	e, err = l.Append(context.Background(), testRollout("a", 1, 3))
	if err != nil || l.Next() != 2 {
		t.Errorf("retry = %+v, %v with Next %d; want exactly one record", e, err, l.Next())
	}
	checkRecords(t, readAll(t, l), 1, []*tsdv1.Rollout{testRollout("a", 1, 3)})
}
