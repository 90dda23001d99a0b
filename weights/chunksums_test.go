package weights

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
)

// TestChunkHasher checks the sums against hashing each chunk directly, whatever the write sizes.
func TestChunkHasher(t *testing.T) {
	data := randomBytes(5, 3*DefaultChunkBytes+1234)
	var want []string
	for off := 0; off < len(data); off += DefaultChunkBytes {
		want = append(want, sha256Hex(data[off:min(off+DefaultChunkBytes, len(data))]))
	}
	for _, piece := range []int{1 << 20, 1000, 3 << 20, len(data)} {
		t.Run(fmt.Sprint(piece), func(t *testing.T) {
			h := newChunkHasher()
			for b := data; len(b) > 0; b = b[min(piece, len(b)):] {
				h.Write(b[:min(piece, len(b))])
			}
			if got := h.finish(); fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("sums %v, want %v", got, want)
			}
		})
	}
}

// TestChunkSumsFile round-trips the cache file and refuses every kind of damage.
func TestChunkSumsFile(t *testing.T) {
	files := []*tsdv1.WeightFile{
		{Name: "a", Size: 2*DefaultChunkBytes + 1, Sha256: sha256Hex([]byte("a"))},
		{Name: "b", Size: 0, Sha256: sha256Hex(nil)},
		{Name: "c", Size: 10, Sha256: sha256Hex([]byte("c"))},
	}
	m := &tsdv1.WeightManifest{Version: 1, Files: files, Sha256: Digest(files)}
	sums := chunkSums{{sha256Hex([]byte("0")), sha256Hex([]byte("1")), sha256Hex([]byte("2"))}, nil, {sha256Hex([]byte("3"))}}
	good := encodeChunkSums(m, sums)
	got, err := decodeChunkSums(good, m)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(sums) {
		t.Fatalf("round trip: %v %v", got, err)
	}
	other := &tsdv1.WeightManifest{Version: 1, Files: files[:1], Sha256: Digest(files[:1])}
	flipped := bytes.Clone(good)
	flipped[len(chunksMagic)+20] ^= 1
	tests := []struct {
		name string
		data []byte
		m    *tsdv1.WeightManifest
	}{
		{"a flipped bit", flipped, m},
		{"truncated", good[:len(good)-70], m},
		{"empty", nil, m},
		{"another checkpoint", good, other},
		{"too few sums", encodeChunkSums(m, chunkSums{sums[0][:2], nil, sums[2]}), m},
		{"too many sums", encodeChunkSums(m, chunkSums{sums[0], {sums[2][0]}, sums[2]}), m},
		{"not a sha256", encodeChunkSums(m, chunkSums{sums[0], nil, {"XYZ"}}), m},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeChunkSums(tt.data, tt.m); !errors.Is(err, ErrDigest) {
				t.Errorf("decode: %v, want ErrDigest", err)
			}
		})
	}
}
