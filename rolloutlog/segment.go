package rolloutlog

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

const (
	segmentSuffix = ".seg"
	segmentDigits = 20 // enough for any uint64, so names sort like the indices they hold
)

// segment is one file of the log: records first, first+1, … at the given byte offsets.
type segment struct {
	first   uint64
	path    string
	f       *os.File // read with ReadAt; the active segment is also appended to
	offsets []int64  // start of each published record
	size    int64    // bytes of published records
}

// count is how many published records the segment holds.
func (s *segment) count() uint64 { return uint64(len(s.offsets)) }

// segmentName is the file name of the segment whose first record has the given index.
func segmentName(first uint64) string {
	return fmt.Sprintf("%0*d%s", segmentDigits, first, segmentSuffix)
}

// parseSegmentName is segmentName's inverse; ok is false for any other name.
func parseSegmentName(name string) (first uint64, ok bool) {
	digits, found := strings.CutSuffix(name, segmentSuffix)
	if !found || len(digits) != segmentDigits {
		return 0, false
	}
	first, err := strconv.ParseUint(digits, 10, 64)
	return first, err == nil && first > 0
}

// listSegments returns the first index of every segment in dir, ascending. A file that ends in
// .seg but is not named like a segment is an error: it may be a segment someone renamed.
func listSegments(dir string) ([]uint64, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var firsts []uint64
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), segmentSuffix) {
			continue
		}
		first, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			return nil, fmt.Errorf("%w: %s is not a segment file (want %s)",
				ErrCorrupt, filepath.Join(dir, e.Name()), segmentName(1))
		}
		firsts = append(firsts, first)
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	return firsts, nil
}

// createSegment makes the empty file for a segment starting at first and makes its name durable.
func createSegment(dir string, first uint64, noSync bool) (*segment, error) {
	path := filepath.Join(dir, segmentName(first))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir, noSync); err != nil {
		f.Close()
		return nil, err
	}
	return &segment{first: first, path: path, f: f}, nil
}

// syncDir makes the directory's entries (created, renamed, removed files) durable.
func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return d.Close()
}
