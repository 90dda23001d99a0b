package rolloutlog

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

// recoverySegmentBytes holds about a dozen of the test's records per segment.
const recoverySegmentBytes = 4 << 10

// buildLog writes 40 records over several segments and closes the log cleanly.
func buildLog(t *testing.T) (dir string, want []*tsdv1.Rollout) {
	t.Helper()
	dir = t.TempDir()
	opts, _ := quietOptions(recoverySegmentBytes)
	want = append(series("a", 20, 30), series("b", 20, 30)...)
	l := mustOpen(t, dir, opts)
	appendAll(t, l, want)
	mustClose(t, l)
	if n := len(segmentFiles(t, dir)); n < 3 {
		t.Fatalf("%d segments, want at least 3", n)
	}
	return dir, want
}

// recordOffsets is where each record of a segment file starts.
func recordOffsets(t *testing.T, path string) []int64 {
	t.Helper()
	scan, err := scanSegment(path, readFile(t, path), false)
	if err != nil || len(scan.offsets) < 2 {
		t.Fatalf("scan %s: %v, %d records; want an intact segment of several", path, err, len(scan.offsets))
	}
	return scan.offsets
}

// snapshot reads every file of dir, to prove that a failed Open changed nothing.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		files[e.Name()] = readFile(t, filepath.Join(dir, e.Name()))
	}
	return files
}

func TestTornTailIsCut(t *testing.T) {
	garbage := make([]byte, 100)
	for i := range garbage {
		garbage[i] = byte(rand.New(rand.NewPCG(7, uint64(i))).Uint32())
	}
	nextFrame, err := encodeFrame(testRollout("c", 1, 30))
	if err != nil {
		t.Fatal(err)
	}
	// Each case damages the last segment as a crash mid-write can; lost is how many of the
	// records written before the crash are gone (the one being written, at most).
	cases := []struct {
		name   string
		damage func(data []byte, last int64) []byte
		lost   int
	}{
		{"cut in the header", func(d []byte, last int64) []byte { return d[:last+3] }, 1},
		{"cut after the header", func(d []byte, last int64) []byte { return d[:last+headerBytes] }, 1},
		{"cut in the payload", func(d []byte, last int64) []byte { return d[:last+headerBytes+10] }, 1},
		{"cut one byte short", func(d []byte, last int64) []byte { return d[:len(d)-1] }, 1},
		{"flip a payload byte", func(d []byte, last int64) []byte { d[last+headerBytes+5] ^= 0x40; return d }, 1},
		{"flip a length byte", func(d []byte, last int64) []byte { d[last] ^= 0x01; return d }, 1},
		{"flip a checksum byte", func(d []byte, last int64) []byte { d[last+4] ^= 0xff; return d }, 1},
		{"garbage appended", func(d []byte, _ int64) []byte { return append(d, garbage...) }, 0},
		{"zeros appended", func(d []byte, _ int64) []byte { return append(d, make([]byte, 4096)...) }, 0},
		{"partial next record", func(d []byte, _ int64) []byte { return append(d, nextFrame[:50]...) }, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, want := buildLog(t)
			files := segmentFiles(t, dir)
			path := files[len(files)-1]
			offsets := recordOffsets(t, path)
			data := c.damage(readFile(t, path), offsets[len(offsets)-1])
			writeFile(t, path, data)

			opts, warnings := quietOptions(recoverySegmentBytes)
			l := mustOpen(t, dir, opts)
			kept := want[:len(want)-c.lost]
			checkRecords(t, readAll(t, l), 1, kept)
			rec := l.Recovery()
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if rec.TornFile != path || rec.TornOffset != info.Size() || rec.TornOffset+rec.TornBytes != int64(len(data)) {
				t.Errorf("Recovery = %+v; want a cut of %s at its new size %d, from %d bytes",
					rec, path, info.Size(), len(data))
			}
			if !strings.Contains(warnings.String(), "torn tail") || !strings.Contains(warnings.String(), path) {
				t.Errorf("no warning naming %s; logged:\n%s", path, warnings)
			}
			// The log goes on where the intact records end, and the cut is not found again.
			e, err := l.Append(context.Background(), testRollout("c", 1, 30))
			if err != nil || e.Index != uint64(len(kept))+1 {
				t.Fatalf("Append after the cut = %+v, %v; want index %d", e, err, len(kept)+1)
			}
			mustClose(t, l)
			l = mustOpen(t, dir, opts)
			defer mustClose(t, l)
			if rec := l.Recovery(); rec.TornFile != "" || rec.Records != uint64(len(kept))+1 {
				t.Errorf("second Recovery = %+v, want %d records, nothing torn", rec, len(kept)+1)
			}
		})
	}
}

func TestCorruptionIsAnError(t *testing.T) {
	// Each case damages acknowledged data or the directory; Open must refuse, name the place,
	// and leave every file as it was.
	cases := []struct {
		name   string
		damage func(t *testing.T, dir string, files []string) (named string)
	}{
		{"flip a payload byte of an earlier record in the last segment", func(t *testing.T, _ string, files []string) string {
			return flip(t, files[len(files)-1], 0, headerBytes+3, 0x10)
		}},
		{"flip a length byte of an earlier record in the last segment", func(t *testing.T, _ string, files []string) string {
			return flip(t, files[len(files)-1], 1, 0, 0x01)
		}},
		{"make an earlier length huge in the last segment", func(t *testing.T, _ string, files []string) string {
			return flip(t, files[len(files)-1], 0, 2, 0x7f)
		}},
		{"flip a payload byte of the last record of an earlier segment", func(t *testing.T, _ string, files []string) string {
			return flip(t, files[0], -1, headerBytes+3, 0x10)
		}},
		{"cut an earlier segment short", func(t *testing.T, _ string, files []string) string {
			data := readFile(t, files[1])
			writeFile(t, files[1], data[:len(data)-7])
			return files[1]
		}},
		{"remove a middle segment", func(t *testing.T, _ string, files []string) string {
			if err := os.Remove(files[1]); err != nil {
				t.Fatal(err)
			}
			return files[2]
		}},
		{"remove the first segment", func(t *testing.T, _ string, files []string) string {
			if err := os.Remove(files[0]); err != nil {
				t.Fatal(err)
			}
			return segmentName(1)
		}},
		{"an intact record that holds no rollout", func(t *testing.T, _ string, files []string) string {
			return appendRaw(t, files[len(files)-1], sealFrame([]byte("\x00\x00\x00\x00\x00\x00\x00\x00\xff\xff")))
		}},
		{"an intact record whose seq goes back", func(t *testing.T, _ string, files []string) string {
			frame, err := encodeFrame(testRollout("a", 3, 30))
			if err != nil {
				t.Fatal(err)
			}
			return appendRaw(t, files[len(files)-1], frame)
		}},
		{"damage behind an interrupted truncation", func(t *testing.T, dir string, files []string) string {
			start, _ := parseSegmentName(filepath.Base(files[1]))
			if err := writeActors(dir, actorsState{FirstIndex: start, Actors: map[string]uint64{"a": 20}}, true); err != nil {
				t.Fatal(err)
			}
			return flip(t, files[1], 1, headerBytes+3, 0x10) // files[0] must not be deleted either
		}},
		{"a damaged actors file", func(t *testing.T, dir string, _ []string) string {
			path := filepath.Join(dir, actorsFile)
			if err := writeActors(dir, actorsState{FirstIndex: 1, Actors: map[string]uint64{"a": 20}}, true); err != nil {
				t.Fatal(err)
			}
			data := readFile(t, path)
			data[len(data)-2] ^= 0x20
			writeFile(t, path, data)
			return path
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir, _ := buildLog(t)
			named := c.damage(t, dir, segmentFiles(t, dir))
			before := snapshot(t, dir)
			opts, _ := quietOptions(recoverySegmentBytes)
			l, err := Open(dir, opts)
			if err == nil {
				l.Close()
				t.Fatal("Open succeeded on a corrupt log")
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(named)) {
				t.Errorf("Open = %v; want ErrCorrupt naming %s", err, filepath.Base(named))
			}
			after := snapshot(t, dir)
			for name, data := range before {
				if !bytes.Equal(data, after[name]) && name != "LOCK" {
					t.Errorf("failed Open changed %s", name)
				}
			}
		})
	}
}

// flip xors one byte of record i (negative counts from the end) of a segment file.
func flip(t *testing.T, path string, record, at int, mask byte) string {
	t.Helper()
	offsets := recordOffsets(t, path)
	if record < 0 {
		record += len(offsets)
	}
	data := readFile(t, path)
	data[offsets[record]+int64(at)] ^= mask
	writeFile(t, path, data)
	return path
}

func appendRaw(t *testing.T, path string, b []byte) string {
	t.Helper()
	writeFile(t, path, append(readFile(t, path), b...))
	return path
}

func TestInterruptedTruncationIsFinished(t *testing.T) {
	dir, want := buildLog(t)
	files := segmentFiles(t, dir)
	keepFrom, _ := parseSegmentName(filepath.Base(files[2]))
	// The crash came after the actors file was written and before the segments were removed.
	st := actorsState{FirstIndex: keepFrom, Actors: map[string]uint64{"a": 20, "b": 20, "gone": 9}}
	if err := writeActors(dir, st, true); err != nil {
		t.Fatal(err)
	}
	opts, _ := quietOptions(recoverySegmentBytes)
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	if got := len(segmentFiles(t, dir)); got != len(files)-2 {
		t.Errorf("%d segments left, want %d", got, len(files)-2)
	}
	if l.First() != keepFrom || l.LastSeq("gone") != 9 {
		t.Errorf("First = %d, LastSeq(gone) = %d; want %d and 9", l.First(), l.LastSeq("gone"), keepFrom)
	}
	checkRecords(t, readAll(t, l), keepFrom, want[keepFrom-1:])
}

// TestReadChecksEveryRecord damages a record after Open indexed it: Read reports it instead of
// handing the trainer a rollout that is not what was acknowledged.
func TestReadChecksEveryRecord(t *testing.T) {
	dir, want := buildLog(t)
	opts, _ := quietOptions(recoverySegmentBytes)
	l := mustOpen(t, dir, opts)
	defer mustClose(t, l)
	files := segmentFiles(t, dir)
	flip(t, files[0], 2, headerBytes+6, 0x04)
	if _, err := l.Read(1, len(want)); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), filepath.Base(files[0])) {
		t.Errorf("Read over a damaged record = %v, want ErrCorrupt naming %s", err, filepath.Base(files[0]))
	}
	if recs, err := l.Read(4, 3); err != nil || len(recs) != 3 {
		t.Errorf("Read past the damage = %d records, %v", len(recs), err)
	}
}
