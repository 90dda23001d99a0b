package rolloutlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"

	tsdv1 "tsd/proto/tsd/v1"
)

// Record is a rollout with its place in the log.
type Record struct {
	Index   uint64
	Rollout *tsdv1.Rollout
}

// Recovery says what Open found, for the caller's logs and metrics.
type Recovery struct {
	Segments int    // segment files kept
	Records  uint64 // records in them
	// TornFile is the segment whose tail was cut ("" when none was); TornOffset is where the cut
	// was made and TornBytes how much was cut. Torn says why.
	TornFile   string
	TornOffset int64
	TornBytes  int64
	Torn       string
}

// Log is a durable, append-only log of rollouts. It is safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	lock *os.File // flock on dir/LOCK, held until Close

	mu       sync.RWMutex
	segs     []*segment        // ascending; the last is the one appended to
	next     uint64            // index the next record gets
	seqs     map[string]uint64 // per actor, highest seq in the log or truncated from it
	notify   chan struct{}     // closed and replaced when records are published or the log closes
	closed   bool
	failed   error // sticky: a write or fsync failed
	recovery Recovery

	truncMu sync.Mutex // one TruncateBefore at a time
	commit  *committer
	stats   struct{ appended, duplicates, commits atomic.Uint64 }
}

// Stats counts what the log did since Open, for metrics: Appended/Commits is the mean group
// commit size.
type Stats struct {
	Appended   uint64 // records written
	Duplicates uint64 // Appends answered as duplicates
	Commits    uint64 // batches written, each with one fsync (plus one per segment started)
}

// Open opens the log in dir, creating it if needed, and recovers it: see the package doc for
// what is cut and what is an error. Every record Append acknowledged before a crash is there.
func Open(dir string, opts Options) (*Log, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(dir), opts.NoSync); err != nil { // dir itself may be new
		return nil, err
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, err
	}
	l := &Log{dir: dir, opts: opts, lock: lock, seqs: map[string]uint64{}, notify: make(chan struct{})}
	if err := l.recover(); err != nil {
		l.closeFiles()
		lock.Close()
		return nil, err
	}
	l.commit = newCommitter(l.segs[len(l.segs)-1])
	go l.runCommitter()
	return l, nil
}

// recover rebuilds the in-memory index from the actors file and the segments. It changes
// nothing on disk until everything has been checked.
func (l *Log) recover() error {
	st, found, err := readActors(l.dir)
	if err != nil {
		return err
	}
	firsts, err := listSegments(l.dir)
	if err != nil {
		return err
	}
	l.next = 1
	if found {
		l.next = st.FirstIndex
		maps.Copy(l.seqs, st.Actors)
	}
	n, err := leftoverSegments(firsts, l.next, found)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, l.dir, err)
	}
	leftovers, firsts := firsts[:n], firsts[n:]
	if len(firsts) == 0 {
		seg, err := createSegment(l.dir, l.next, l.opts.NoSync)
		if err != nil {
			return err
		}
		l.segs = []*segment{seg}
	} else if err := l.loadSegments(firsts); err != nil {
		return err
	}
	return l.removeLeftovers(leftovers)
}

// leftoverSegments counts the segments that a TruncateBefore interrupted by a crash meant to
// delete: those before start, the first index the actors file (written first) keeps. It checks
// that the segment the log starts with is there.
func leftoverSegments(firsts []uint64, start uint64, found bool) (int, error) {
	keep := sort.Search(len(firsts), func(i int) bool { return firsts[i] >= start })
	if keep < len(firsts) && firsts[keep] == start {
		return keep, nil
	}
	if !found && len(firsts) == 0 {
		return 0, nil // a new log
	}
	return 0, fmt.Errorf("no segment %s, where the log starts", segmentName(start))
}

// removeLeftovers finishes an interrupted truncation, and drops a stale actors temp file.
func (l *Log) removeLeftovers(leftovers []uint64) error {
	tmp := filepath.Join(l.dir, actorsFile+".tmp")
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if len(leftovers) == 0 {
		return nil
	}
	for _, first := range leftovers {
		if err := os.Remove(filepath.Join(l.dir, segmentName(first))); err != nil {
			return err
		}
	}
	return syncDir(l.dir, l.opts.NoSync)
}

// loadSegments scans the segments in order. Only once all of them passed is a torn tail cut, so
// that a log found corrupt is left exactly as it was.
func (l *Log) loadSegments(firsts []uint64) error {
	inSegments := map[string]uint64{} // highest seq per actor seen so far, to check order
	var torn segmentScan
	for i, first := range firsts {
		last := i == len(firsts)-1
		seg, scan, err := l.loadSegment(first, last, inSegments)
		if seg != nil {
			l.segs = append(l.segs, seg)
		}
		if err != nil {
			return err
		}
		torn = scan
	}
	for actor, seq := range inSegments {
		l.seqs[actor] = max(l.seqs[actor], seq)
	}
	l.recovery.Segments = len(l.segs)
	l.recovery.Records = l.next - l.segs[0].first
	if torn.torn != "" {
		return l.cutTail(torn)
	}
	return nil
}

// loadSegment opens, reads and indexes one segment, checking that it starts where the previous
// one ended and that every actor's seqs go up.
func (l *Log) loadSegment(first uint64, last bool, seqs map[string]uint64) (*segment, segmentScan, error) {
	path := filepath.Join(l.dir, segmentName(first))
	if first != l.next {
		return nil, segmentScan{}, fmt.Errorf("%w: %s starts at index %d, but the log before it ends at index %d (a segment is missing)",
			ErrCorrupt, path, first, l.next-1)
	}
	flag := os.O_RDONLY
	if last {
		flag = os.O_RDWR | os.O_APPEND
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, segmentScan{}, err
	}
	seg := &segment{first: first, path: path, f: f}
	data, err := io.ReadAll(f)
	if err != nil {
		return seg, segmentScan{}, fmt.Errorf("read %s: %w", path, err)
	}
	scan, err := scanSegment(path, data, last)
	if err != nil {
		return seg, scan, err
	}
	for j, off := range scan.offsets {
		to := scan.end
		if j+1 < len(scan.offsets) {
			to = scan.offsets[j+1]
		}
		r, err := decodeFrame(data[off:to])
		if err != nil {
			return seg, scan, fmt.Errorf("%w: %s offset %d: intact record holds no valid rollout: %w",
				ErrCorrupt, path, off, err)
		}
		if r.GetSeq() <= seqs[r.GetActorId()] {
			return seg, scan, fmt.Errorf("%w: %s offset %d: actor %q seq %d after seq %d",
				ErrCorrupt, path, off, r.GetActorId(), r.GetSeq(), seqs[r.GetActorId()])
		}
		seqs[r.GetActorId()] = r.GetSeq()
	}
	seg.offsets, seg.size = scan.offsets, scan.end
	l.next += seg.count()
	return seg, scan, nil
}

// cutTail truncates the last segment to its intact records and warns about it.
func (l *Log) cutTail(scan segmentScan) error {
	seg := l.segs[len(l.segs)-1]
	info, err := seg.f.Stat()
	if err != nil {
		return err
	}
	if err := seg.f.Truncate(scan.end); err != nil {
		return fmt.Errorf("cut torn tail of %s: %w", seg.path, err)
	}
	if !l.opts.NoSync {
		if err := seg.f.Sync(); err != nil {
			return fmt.Errorf("sync %s: %w", seg.path, err)
		}
	}
	l.recovery.TornFile, l.recovery.TornOffset = seg.path, scan.end
	l.recovery.TornBytes, l.recovery.Torn = info.Size()-scan.end, scan.torn
	l.opts.Logger.Warn("rolloutlog: cut torn tail left by a crash",
		"file", seg.path, "offset", scan.end, "bytes", l.recovery.TornBytes, "reason", scan.torn)
	return nil
}

// Stats returns the counters since Open.
func (l *Log) Stats() Stats {
	return Stats{
		Appended:   l.stats.appended.Load(),
		Duplicates: l.stats.duplicates.Load(),
		Commits:    l.stats.commits.Load(),
	}
}

// Recovery reports what Open found and cut.
func (l *Log) Recovery() Recovery { return l.recovery }

// Next is the index the next appended record will get: every index below it is in the log
// (or was truncated).
func (l *Log) Next() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.next
}

// First is the lowest index Read still returns; Next when the log holds no records.
func (l *Log) First() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.segs[0].first
}

// LastSeq is the highest seq of the actor's rollouts that is durable (0 for an unknown actor):
// the learner's answer to an actor's Hello.
func (l *Log) LastSeq(actorID string) uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.seqs[actorID]
}

// Actors returns a copy of every actor's highest durable seq.
func (l *Log) Actors() map[string]uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return maps.Clone(l.seqs)
}

// Read returns up to max records with index from, from+1, …, in order; none when from is Next
// or beyond. Reading below First is ErrTruncated.
func (l *Log) Read(from uint64, max int) ([]Record, error) {
	if max < 1 {
		return nil, fmt.Errorf("%w: read max %d < 1", ErrInvalidArgument, max)
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if first := l.segs[0].first; from < first {
		return nil, fmt.Errorf("%w: read from %d, log starts at %d", ErrTruncated, from, first)
	}
	if from >= l.next {
		return nil, nil
	}
	end := l.next
	if uint64(max) < end-from {
		end = from + uint64(max)
	}
	recs := make([]Record, 0, end-from)
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > from }) - 1
	for ; from < end; i++ {
		got, err := l.segs[i].read(from, end)
		if err != nil {
			return nil, err
		}
		recs = append(recs, got...)
		from += uint64(len(got))
	}
	return recs, nil
}

// Wait blocks until a record with index from or above is in the log, ctx is done, or the log
// closes or fails.
func (l *Log) Wait(ctx context.Context, from uint64) error {
	for {
		l.mu.RLock()
		next, closed, failed, ch := l.next, l.closed, l.failed, l.notify
		l.mu.RUnlock()
		switch {
		case next > from:
			return nil
		case closed:
			return ErrClosed
		case failed != nil:
			return failed
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close stops taking rollouts, writes those already queued (their results arrive as usual),
// and closes the files.
func (l *Log) Close() error {
	if !l.commit.stop() {
		return ErrClosed
	}
	<-l.commit.done

	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.notify)
	err := l.closeFiles()
	if lerr := l.lock.Close(); err == nil {
		err = lerr
	}
	return err
}

// closeFiles closes every segment file, returning the first error.
func (l *Log) closeFiles() error {
	var first error
	for _, s := range l.segs {
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// read decodes the records of s with indices in [from, end), as many as s holds. The caller
// holds the log's read lock, which keeps the file open and the offsets stable.
func (s *segment) read(from, end uint64) ([]Record, error) {
	k := from - s.first
	n := min(end-from, s.count()-k)
	start, stop := s.offsets[k], s.size
	if k+n < s.count() {
		stop = s.offsets[k+n]
	}
	buf := make([]byte, stop-start)
	if _, err := s.f.ReadAt(buf, start); err != nil {
		return nil, fmt.Errorf("read %s: %w", s.path, err)
	}
	recs := make([]Record, n)
	for j := range recs {
		at, to := s.offsets[k+uint64(j)], stop
		if uint64(j)+1 < n {
			to = s.offsets[k+uint64(j)+1]
		}
		r, err := decodeFrame(buf[at-start : to-start])
		if err != nil {
			return nil, fmt.Errorf("%w: %s offset %d changed since it was written: %w",
				ErrCorrupt, s.path, at, err)
		}
		recs[j] = Record{Index: from + uint64(j), Rollout: r}
	}
	return recs, nil
}
