package rolloutlog

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

func TestRoundTripAndReopen(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	var want []*tsdv1.Rollout
	for seq := uint64(1); seq <= 20; seq++ {
		for _, actor := range []string{"actor-a", "actor-b", "actor-c"} {
			want = append(want, testRollout(actor, seq, int(seq)*7))
		}
	}
	l := mustOpen(t, dir, opts)
	appendAll(t, l, want)
	checkRecords(t, readAll(t, l), 1, want)
	if got := l.Next(); got != uint64(len(want))+1 {
		t.Errorf("Next = %d, want %d", got, len(want)+1)
	}
	mustClose(t, l)

	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkRecords(t, readAll(t, l), 1, want)
	wantActors := map[string]uint64{"actor-a": 20, "actor-b": 20, "actor-c": 20}
	if got := l.Actors(); fmt.Sprint(got) != fmt.Sprint(wantActors) {
		t.Errorf("Actors = %v, want %v", got, wantActors)
	}
	if rec := l.Recovery(); rec.TornFile != "" || rec.Records != uint64(len(want)) || rec.Segments != 1 {
		t.Errorf("Recovery = %+v, want %d records in 1 segment, nothing torn", rec, len(want))
	}
	e, err := l.Append(context.Background(), testRollout("actor-d", 1, 5))
	if err != nil || e != (Entry{Index: uint64(len(want)) + 1}) {
		t.Errorf("Append after reopen = %+v, %v; want index %d", e, err, len(want)+1)
	}
}

func TestDuplicates(t *testing.T) {
	opts, _ := quietOptions(0)
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	appendAll(t, l, series("a", 3, 4))
	ctx := context.Background()
	steps := []struct {
		seq  uint64
		want Entry
	}{
		{2, Entry{Duplicate: true}},
		{3, Entry{Duplicate: true}},
		{5, Entry{Index: 4}}, // a gap is allowed: the learner may have rejected seq 4
		{4, Entry{Duplicate: true}},
		{6, Entry{Index: 5}},
	}
	for _, s := range steps {
		t.Run(fmt.Sprint("seq", s.seq), func(t *testing.T) {
			got, err := l.Append(ctx, testRollout("a", s.seq, 4))
			if err != nil || got != s.want {
				t.Errorf("Append(a/%d) = %+v, %v; want %+v", s.seq, got, err, s.want)
			}
		})
	}
	if got := l.LastSeq("a"); got != 6 {
		t.Errorf("LastSeq = %d, want 6", got)
	}
	if got := l.LastSeq("nobody"); got != 0 {
		t.Errorf("LastSeq(unknown) = %d, want 0", got)
	}
	if got := l.Next(); got != 6 {
		t.Errorf("Next = %d, want 6: duplicates take no index", got)
	}
}

func TestAppendRejects(t *testing.T) {
	opts, _ := quietOptions(0)
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	huge := testRollout("a", 1, 0)
	huge.PromptId = strings.Repeat("x", MaxRecordBytes)
	cases := []struct {
		name string
		r    *tsdv1.Rollout
		want error
	}{
		{"nil", nil, ErrInvalidRollout},
		{"no actor", testRollout("", 1, 3), ErrInvalidRollout},
		{"seq 0", testRollout("a", 0, 3), ErrInvalidRollout},
		{"too large", huge, ErrTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := l.Append(context.Background(), c.r); !errors.Is(err, c.want) {
				t.Errorf("Append = %v, want %v", err, c.want)
			}
		})
	}
	if got := l.Next(); got != 1 {
		t.Errorf("Next = %d after rejected appends, want 1", got)
	}
}

func TestOptionsRejected(t *testing.T) {
	for _, size := range []int64{-1, 100, 2 << 30} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			if _, err := Open(t.TempDir(), Options{SegmentBytes: size}); !errors.Is(err, ErrInvalidOptions) {
				t.Errorf("Open(SegmentBytes %d) = %v, want ErrInvalidOptions", size, err)
			}
		})
	}
}

func TestRead(t *testing.T) {
	opts, _ := quietOptions(2 << 10) // a few records per segment, so reads cross segments
	l := mustOpen(t, t.TempDir(), opts)
	defer mustClose(t, l)
	want := series("a", 30, 40)
	appendAll(t, l, want)
	if n := len(l.segs); n < 5 {
		t.Fatalf("%d segments, want several", n)
	}
	cases := []struct {
		from    uint64
		max     int
		want    int // records, starting at from
		wantErr error
	}{
		{1, 1000, 30, nil},
		{1, 7, 7, nil},
		{13, 5, 5, nil},
		{29, 5, 2, nil},
		{30, 1, 1, nil},
		{31, 1, 0, nil},
		{500, 1, 0, nil},
		{0, 1, 0, ErrTruncated},
		{1, 0, 0, ErrInvalidArgument},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("from%d_max%d", c.from, c.max), func(t *testing.T) {
			got, err := l.Read(c.from, c.max)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("Read = %v, want %v", err, c.wantErr)
			}
			if c.wantErr == nil && c.want == 0 && len(got) != 0 {
				t.Fatalf("Read returned %d records, want none", len(got))
			}
			if c.wantErr == nil && c.want > 0 {
				checkRecords(t, got, c.from, want[c.from-1:c.from-1+uint64(c.want)])
			}
		})
	}
}

func TestSegmentRotation(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(minSegmentBytes)
	want := append(series("a", 9, 60), series("b", 9, 60)...) // about 560 bytes each
	want = append(want, series("big", 1, 2000)...)            // more than a segment on its own
	want = append(want, series("c", 2, 10)...)
	l := mustOpen(t, dir, opts)
	appendAll(t, l, want)
	mustClose(t, l)

	files := segmentFiles(t, dir)
	if len(files) < len(want)/2 {
		t.Fatalf("%d segments for %d records of about half a segment each", len(files), len(want))
	}
	for _, path := range files {
		if info, err := os.Stat(path); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v, size %d; want a non-empty segment", path, err, info.Size())
		}
	}
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	recs := readAll(t, l)
	checkRecords(t, recs, 1, want)
	for i, path := range files { // every name is the index of the segment's first record
		first, _ := parseSegmentName(filepath.Base(path))
		if first < 1 || first > uint64(len(recs)) || (i > 0 && first <= l.segs[i-1].first) {
			t.Errorf("segment %s names no record in order", path)
		}
	}
}

func TestWait(t *testing.T) {
	opts, _ := quietOptions(0)
	l := mustOpen(t, t.TempDir(), opts)
	appendAll(t, l, series("a", 2, 3))
	ctx := context.Background()
	if err := l.Wait(ctx, 2); err != nil {
		t.Errorf("Wait for an existing record = %v", err)
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := l.Wait(canceled, 3); !errors.Is(err, context.Canceled) {
		t.Errorf("Wait with a canceled context = %v, want context.Canceled", err)
	}

	woke := make(chan error, 1)
	go func() { woke <- l.Wait(ctx, 3) }()
	appendAll(t, l, []*tsdv1.Rollout{testRollout("a", 3, 3)})
	if err := <-woke; err != nil {
		t.Errorf("Wait woken by an append = %v", err)
	}

	closed := make(chan error, 1)
	go func() { closed <- l.Wait(ctx, 100) }()
	mustClose(t, l)
	if err := <-closed; !errors.Is(err, ErrClosed) {
		t.Errorf("Wait woken by Close = %v, want ErrClosed", err)
	}
}

func TestClosed(t *testing.T) {
	opts, _ := quietOptions(0)
	l := mustOpen(t, t.TempDir(), opts)
	appendAll(t, l, series("a", 1, 3))
	mustClose(t, l)
	ctx := context.Background()
	checks := map[string]error{
		"Append":         func() error { _, err := l.Append(ctx, testRollout("a", 2, 3)); return err }(),
		"Read":           func() error { _, err := l.Read(1, 1); return err }(),
		"Wait":           l.Wait(ctx, 5),
		"TruncateBefore": l.TruncateBefore(1),
		"Close":          l.Close(),
	}
	for name, err := range checks {
		if !errors.Is(err, ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

func TestLocked(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	l := mustOpen(t, dir, opts)
	if _, err := Open(dir, opts); !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	mustClose(t, l)
	mustClose(t, mustOpen(t, dir, opts))
}

func TestBadSegmentName(t *testing.T) {
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	mustClose(t, mustOpen(t, dir, opts))
	writeFile(t, filepath.Join(dir, "7.seg"), nil)
	if _, err := Open(dir, opts); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "7.seg") {
		t.Errorf("Open with a stray .seg file = %v, want ErrCorrupt naming it", err)
	}
}
