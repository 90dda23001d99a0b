package weights_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// chunkSumsFile is the path of version 1's chunk sums in s.
func chunkSumsFile(s *weights.Store) string { return filepath.Join(s.Root(), "v00000001.chunks") }

// wantChunkSums spells out the cache file of files (manifest m) from its documented format.
func wantChunkSums(m *tsdv1.WeightManifest, files map[string][]byte) string {
	var b strings.Builder
	b.WriteString("tsd-chunks 1 1048576 " + m.GetSha256() + "\n")
	for _, f := range m.GetFiles() {
		data := files[f.GetName()]
		for off := 0; off < len(data); off += weights.DefaultChunkBytes {
			b.WriteString(sha256Hex(data[off:min(off+weights.DefaultChunkBytes, len(data))]) + "\n")
		}
	}
	return b.String() + sha256Hex([]byte(b.String())) + "\n"
}

// TestChunkSumsWritten checks that Put and a Fetch in default chunks leave the cache file, that a
// Fetch in other chunks leaves none, and that Keep deletes it with its version.
func TestChunkSumsWritten(t *testing.T) {
	files := randomFiles(30, 2<<20+999)
	src, m := storeWith(t, 1, files)
	want := wantChunkSums(m, files)
	if got, err := os.ReadFile(chunkSumsFile(src)); err != nil || string(got) != want {
		t.Fatalf("Put wrote %q (%v), want %q", got, err, want)
	}
	for _, chunk := range []int{0, 64 << 10} {
		dst := newStore(t)
		opts := weights.FetchOptions{ChunkBytes: chunk}
		if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, weights.NewServer(src))}}, 1, m.GetSha256(), dst, opts); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(chunkSumsFile(dst))
		switch {
		case chunk == 0 && string(got) != want:
			t.Errorf("Fetch in default chunks wrote %q (%v), want %q", got, err, want)
		case chunk != 0 && !os.IsNotExist(err):
			t.Errorf("Fetch in %d-byte chunks wrote chunk sums (%v)", chunk, err)
		}
	}
	if _, err := src.Keep(0); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(chunkSumsFile(src)); !os.IsNotExist(err) {
		t.Errorf("Keep(0) left the chunk sums: %v", err)
	}
}

// TestChunkSumsServed forges one sum in a cache whose own checksum is correct: the server sends
// it (so it serves from the cache, not by hashing) and the fetcher refuses the chunk (so the
// cache weakens no check). A cache damaged in any other way is noticed when the store opens and
// ignored: the server hashes again and the fetch succeeds.
func TestChunkSumsServed(t *testing.T) {
	files := randomFiles(31, 2<<20)
	src, m := storeWith(t, 1, files)
	lines := strings.Split(wantChunkSums(m, files), "\n")
	forgedChunk := 3 // after the header, config.json and generation_config.json: the model's first chunk
	lines[forgedChunk] = sha256Hex([]byte("not the chunk"))
	body := strings.Join(lines[:len(lines)-2], "\n") + "\n"
	sum := sha256.Sum256([]byte(body))
	forged := body + hex.EncodeToString(sum[:]) + "\n"
	damaged := strings.Replace(wantChunkSums(m, files), lines[2][:8], "00000000", 1)

	tests := []struct {
		name      string
		cache     string
		corrupted int // chunks the fetcher refused
	}{
		{"forged sum", forged, 1},
		{"damaged cache", damaged, 0},
		{"no cache", "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := os.Remove(chunkSumsFile(src)); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
			if tt.cache != "" {
				writeFile(t, chunkSumsFile(src), tt.cache)
			}
			reopened, err := weights.OpenStore(src.Root())
			if err != nil {
				t.Fatal(err)
			}
			var log errorLog
			opts := quick
			opts.MaxRetries, opts.OnError = 1, log.add
			dst := newStore(t)
			_, err = weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, weights.NewServer(reopened))}}, 1, m.GetSha256(), dst, opts)
			if n := log.count(weights.ErrCorruptChunk); n < tt.corrupted || tt.corrupted == 0 && n > 0 {
				t.Errorf("%d corrupt chunks reported, want %d: %v", n, tt.corrupted, log.errs)
			}
			if tt.corrupted > 0 {
				if err == nil || dst.Has(1) {
					t.Errorf("a forged chunk sum was accepted: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			sameFiles(t, dst.Dir(1), files)
		})
	}
}

// TestServerChunkGrid checks that chunks end on multiples of the chunk size, so a stream resumed
// inside a chunk first sends the rest of that chunk.
func TestServerChunkGrid(t *testing.T) {
	files := randomFiles(32, 3<<20+5)
	s, _ := storeWith(t, 1, files)
	c := serve(t, weights.NewServer(s))
	for _, chunk := range []int64{weights.DefaultChunkBytes, 64 << 10} {
		req := &tsdv1.FetchRequest{Version: 1, ResumeFile: "model.safetensors", ResumeOffset: 100_000, ChunkBytes: uint32(chunk)}
		_, chunks, err := readStream(t, c, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) == 0 || chunks[0].Offset != 100_000 || int64(len(chunks[0].Data)) != chunk-100_000%chunk {
			t.Fatalf("chunk size %d: first chunk %d bytes, want the %d to the next multiple", chunk, len(chunks[0].Data), chunk-100_000%chunk)
		}
		for _, ch := range chunks {
			end := ch.Offset + int64(len(ch.Data))
			if end%chunk != 0 && end != int64(len(files[ch.File])) {
				t.Errorf("chunk size %d: %s chunk ends at %d, off the grid", chunk, ch.File, end)
			}
		}
	}
}
