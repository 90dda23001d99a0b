package rolloutlog

import (
	"errors"
	"path/filepath"
	"testing"
)

// fuzzSeeds are segment images to mutate: intact records, a torn one, garbage, zeros.
func fuzzSeeds(f *testing.F) {
	var seg []byte
	for seq := uint64(1); seq <= 3; seq++ {
		frame, err := encodeFrame(testRollout("a", seq, int(seq)*4))
		if err != nil {
			f.Fatal(err)
		}
		seg = append(seg, frame...)
	}
	f.Add(seg)
	f.Add(seg[:len(seg)-5])
	f.Add(append(append([]byte{}, seg...), 0xde, 0xad, 0xbe, 0xef, 1, 2, 3, 4, 5))
	f.Add(make([]byte, 64))
	f.Add([]byte{})
	f.Add(sealFrame([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\x0a\x01a\x10\x01")))
}

// FuzzScanSegment checks the framing scan alone, on both kinds of segment: it never panics,
// every record it keeps is intact and contiguous with the previous one, and only the last
// segment may have a tail cut.
func FuzzScanSegment(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, last := range []bool{false, true} {
			scan, err := scanSegment("fuzz.seg", data, last)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("last=%t: error %v does not wrap ErrCorrupt", last, err)
				}
				continue
			}
			var at int64
			for _, off := range scan.offsets {
				n, problem := checkFrame(data[off:])
				if off != at || problem != "" {
					t.Fatalf("last=%t: kept a record at %d (expected %d): %s", last, off, at, problem)
				}
				at += int64(n)
			}
			if at != scan.end || (scan.torn == "" && at != int64(len(data))) || (!last && scan.torn != "") {
				t.Fatalf("last=%t: records end at %d, scan end %d of %d, torn %q", last, at, scan.end, len(data), scan.torn)
			}
		}
	})
}

// FuzzOpen feeds arbitrary bytes to recovery as the only segment of a log: Open never panics,
// fails only with ErrCorrupt, and when it succeeds every record it serves was written intact.
func FuzzOpen(f *testing.F) {
	fuzzSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		path := filepath.Join(dir, segmentName(1))
		writeFile(t, path, data)
		opts, _ := quietOptions(0)
		opts.NoSync = true
		l, err := Open(dir, opts)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: %v, want ErrCorrupt or success", err)
			}
			return
		}
		defer l.Close()
		recs := readAll(t, l)
		kept := readFile(t, path) // the intact prefix of data, after any cut
		if len(kept) > len(data) || string(kept) != string(data[:len(kept)]) {
			t.Fatalf("Open rewrote the segment instead of cutting it")
		}
		var off int
		for i, rec := range recs {
			n, problem := checkFrame(kept[off:])
			if problem != "" || rec.Index != uint64(i+1) {
				t.Fatalf("record %d (index %d) at offset %d: %s", i, rec.Index, off, problem)
			}
			r, err := decodeFrame(kept[off : off+n])
			if err != nil || r.GetActorId() != rec.Rollout.GetActorId() || r.GetSeq() != rec.Rollout.GetSeq() {
				t.Fatalf("record %d is not what the file holds: %v", i, err)
			}
			off += n
		}
		if off != len(kept) {
			t.Fatalf("%d records cover %d of the %d bytes kept", len(recs), off, len(kept))
		}
	})
}
