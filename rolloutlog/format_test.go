package rolloutlog

import (
	"bytes"
	"encoding/binary"
	"flag"
	"hash/crc32"
	"path/filepath"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// goldenRollouts are the records of testdata/golden.seg.
func goldenRollouts() []*tsdv1.Rollout {
	return []*tsdv1.Rollout{testRollout("actor-0", 1, 3), testRollout("actor-1", 1, 0), testRollout("actor-0", 2, 5)}
}

// TestFormatGolden pins the on-disk format: a log written today is byte for byte the golden
// segment, and the golden segment opens to the same rollouts, so a change that would strand
// existing logs fails here first.
func TestFormatGolden(t *testing.T) {
	golden := filepath.Join("testdata", "golden.seg")
	dir := t.TempDir()
	opts, _ := quietOptions(0)
	opts.NoSync = true
	l := mustOpen(t, dir, opts)
	appendAll(t, l, goldenRollouts())
	mustClose(t, l)
	written := readFile(t, filepath.Join(dir, segmentName(1)))
	if *update {
		writeFile(t, golden, written)
	}
	want := readFile(t, golden)
	if !bytes.Equal(written, want) {
		t.Fatalf("segment written differs from %s (rerun with -update only if the format is meant to change)", golden)
	}

	// The framing by hand: [u32 length][u32 CRC-32C(payload)][payload], little-endian.
	first := binary.LittleEndian.Uint32(want[0:4])
	if crc := crc32.Checksum(want[8:8+first], crc32.MakeTable(crc32.Castagnoli)); crc != binary.LittleEndian.Uint32(want[4:8]) {
		t.Errorf("first record's checksum field %#x, CRC-32C of its payload %#x", binary.LittleEndian.Uint32(want[4:8]), crc)
	}

	dir = t.TempDir()
	writeFile(t, filepath.Join(dir, segmentName(1)), want)
	l = mustOpen(t, dir, opts)
	defer mustClose(t, l)
	checkRecords(t, readAll(t, l), 1, goldenRollouts())
}
