package rolloutlog

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
)

// TestSubmitPipelines submits one actor's rollouts without waiting, as a stream handler does
// with credits: they are written in submission order and share commits.
func TestSubmitPipelines(t *testing.T) {
	const n = 300
	opts, _ := quietOptions(32 << 10)
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	want := series("a", n, 20)
	var results []<-chan Result
	for _, r := range want {
		done, err := l.Submit(context.Background(), r)
		if err != nil {
			t.Fatalf("Submit(a/%d): %v", r.Seq, err)
		}
		results = append(results, done)
	}
	for i, done := range results {
		if res := <-done; res.Err != nil || res.Entry != (Entry{Index: uint64(i + 1)}) {
			t.Fatalf("result %d = %+v, want index %d", i, res, i+1)
		}
	}
	checkRecords(t, readAll(t, l), 1, want)
	if st := l.Stats(); st.Commits >= n {
		t.Errorf("Stats = %+v: %d pipelined rollouts took %d commits", st, n, st.Commits)
	}
}

// TestSubmitBackpressure lowers the queue limit to one record, so that every submitter waits
// for room, and checks that nothing is lost or reordered.
func TestSubmitBackpressure(t *testing.T) {
	const actors, perActor = 8, 40
	opts, _ := quietOptions(0)
	opts.NoSync = true
	l := mustOpen(t, t.TempDir(), opts)
	l.commit.limit = 1
	var wg sync.WaitGroup
	for a := range actors {
		wg.Go(func() {
			var results []<-chan Result
			for _, r := range series(fmt.Sprint("actor-", a), perActor, 10) {
				done, err := l.Submit(context.Background(), r)
				if err != nil {
					t.Errorf("Submit: %v", err)
					return
				}
				results = append(results, done)
			}
			var last uint64
			for _, done := range results {
				res := <-done
				if res.Err != nil || res.Entry.Duplicate || res.Entry.Index <= last {
					t.Errorf("actor-%d: %+v after index %d", a, res, last)
				}
				last = res.Entry.Index
			}
		})
	}
	wg.Wait()
	if st := l.Stats(); st.Appended != actors*perActor {
		t.Errorf("Stats = %+v, want %d appended", st, actors*perActor)
	}
	mustClose(t, l)
}

// TestCloseWritesQueued checks that Close delivers a result for everything submitted before it.
func TestCloseWritesQueued(t *testing.T) {
	opts, _ := quietOptions(0)
	dir := t.TempDir()
	l := mustOpen(t, dir, opts)
	var results []<-chan Result
	for _, r := range series("a", 50, 10) {
		done, err := l.Submit(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, done)
	}
	mustClose(t, l)
	for i, done := range results {
		if res := <-done; res.Err != nil || res.Entry.Index != uint64(i+1) {
			t.Fatalf("result %d = %+v after Close", i, res)
		}
	}
	if _, err := l.Submit(context.Background(), testRollout("a", 51, 1)); !errors.Is(err, ErrClosed) {
		t.Errorf("Submit after Close = %v, want ErrClosed", err)
	}
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if l.Next() != 51 {
		t.Errorf("Next after reopen = %d, want 51", l.Next())
	}
}

// TestWriteFailureIsSticky breaks the segment file under the log: the append fails, every later
// one fails too (the disk state is unknown), Waiters are told, and a reopen recovers.
func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	l := mustOpen(t, dir, opts)
	want := series("a", 3, 10)
	appendAll(t, l, want)
	waiting := make(chan error, 1)
	go func() { waiting <- l.Wait(context.Background(), 10) }()
	if err := l.commit.active.f.Close(); err != nil { // the committer is idle: no rotation races
		t.Fatal(err)
	}
	ctx := context.Background()
	for seq := uint64(4); seq <= 5; seq++ {
		if _, err := l.Append(ctx, testRollout("a", seq, 10)); !errors.Is(err, ErrFailed) {
			t.Errorf("Append(a/%d) on a broken file = %v, want ErrFailed", seq, err)
		}
	}
	if err := <-waiting; !errors.Is(err, ErrFailed) {
		t.Errorf("Wait on a failed log = %v, want ErrFailed", err)
	}
	if err := l.Close(); err == nil {
		t.Error("Close of a log whose file was closed under it reported nothing")
	}
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkRecords(t, readAll(t, l), 1, want)
}
