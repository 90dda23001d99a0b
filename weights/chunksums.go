package weights

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"os"
	"strings"

	tsdv1 "tsd/proto/tsd/v1"
)

// A version's chunk sums are the sha256s of its files' DefaultChunkBytes chunks, which a Server
// sends with every chunk. Computing them once per version (Put hashes while it copies, Fetch keeps
// the sums it verified) instead of on every stream takes one of a broadcast's three sha256 passes
// off the sender. They are a cache beside the manifest, <root>/v00000007.chunks:
//
//	tsd-chunks 1 <chunk bytes> <checkpoint digest>
//	<sha256 of chunk 0 of the first file>
//	...
//	<sha256 of all the lines above>
//
// The last line makes a damaged cache detectable when the store opens; such a cache is ignored
// (the Server hashes on the fly, as without one), never trusted. The manifest and its digest do
// not depend on it.
const (
	chunksSuffix = ".chunks"
	chunksMagic  = "tsd-chunks 1"
)

// chunkSums holds, per file in manifest order, the hex sha256 of each DefaultChunkBytes chunk.
type chunkSums [][]string

// chunkCount is the number of DefaultChunkBytes chunks of a file of size bytes.
func chunkCount(size int64) int { return int((size + DefaultChunkBytes - 1) / DefaultChunkBytes) }

// sum returns the cached sha256 of file i's chunk at offset in a stream of chunkBytes chunks, or
// "" when the cache does not have it: another chunk size, or an offset off the grid. A Server cuts
// chunks on the grid (see chunkLen), so on it a chunk is exactly a cached one.
func (c chunkSums) sum(i int, offset int64, chunkBytes int) string {
	if c == nil || chunkBytes != DefaultChunkBytes || offset%DefaultChunkBytes != 0 {
		return ""
	}
	return c[i][offset/DefaultChunkBytes]
}

// encodeChunkSums writes the cache file's contents for the version m.
func encodeChunkSums(m *tsdv1.WeightManifest, sums chunkSums) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %d %s\n", chunksMagic, DefaultChunkBytes, m.GetSha256())
	for _, file := range sums {
		for _, s := range file {
			b.WriteString(s)
			b.WriteByte('\n')
		}
	}
	trailer := sha256.Sum256(b.Bytes())
	b.WriteString(hex.EncodeToString(trailer[:]))
	b.WriteByte('\n')
	return b.Bytes()
}

// decodeChunkSums parses a cache file and checks it against its trailer and the manifest m: same
// digest and chunk size, one well-formed sum per chunk of every file.
func decodeChunkSums(data []byte, m *tsdv1.WeightManifest) (chunkSums, error) {
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	if len(lines) < 2 {
		return nil, fmt.Errorf("%w: chunk sums: too short", ErrDigest)
	}
	body, trailer := lines[:len(lines)-1], lines[len(lines)-1]
	bodyBytes := len(data) - len(trailer) - 1
	if bodyBytes < 0 || sha256Hex(data[:bodyBytes]) != trailer {
		return nil, fmt.Errorf("%w: chunk sums: damaged (trailer does not match)", ErrDigest)
	}
	if want := fmt.Sprintf("%s %d %s", chunksMagic, DefaultChunkBytes, m.GetSha256()); body[0] != want {
		return nil, fmt.Errorf("%w: chunk sums: header %q, want %q", ErrDigest, body[0], want)
	}
	sums := body[1:]
	out := make(chunkSums, len(m.GetFiles()))
	for i, f := range m.GetFiles() {
		n := chunkCount(f.GetSize())
		if n > len(sums) {
			return nil, fmt.Errorf("%w: chunk sums: too few for %s", ErrDigest, f.GetName())
		}
		out[i], sums = sums[:n:n], sums[n:]
	}
	if len(sums) != 0 {
		return nil, fmt.Errorf("%w: chunk sums: %d more than the files have", ErrDigest, len(sums))
	}
	for _, file := range out {
		for _, s := range file {
			if !isSHA256(s) {
				return nil, fmt.Errorf("%w: chunk sums: %q is not a sha256", ErrDigest, s)
			}
		}
	}
	return out, nil
}

// readChunkSums loads the cache at path for m; a missing or damaged cache gives nil.
func readChunkSums(path string, m *tsdv1.WeightManifest) chunkSums {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	sums, err := decodeChunkSums(data, m)
	if err != nil {
		return nil
	}
	return sums
}

// sha256Hex is the hex sha256 of b.
func sha256Hex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// chunkHasher is an io.Writer that records the sha256 of every DefaultChunkBytes chunk of what
// is written to it, for Put to compute a file's chunk sums in the pass that copies it.
type chunkHasher struct {
	h    hash.Hash
	n    int // bytes of the current chunk so far
	sums []string
}

func newChunkHasher() *chunkHasher { return &chunkHasher{h: sha256.New()} }

func (c *chunkHasher) Write(p []byte) (int, error) {
	written := len(p)
	for len(p) > 0 {
		k := min(len(p), DefaultChunkBytes-c.n)
		c.h.Write(p[:k])
		c.n += k
		p = p[k:]
		if c.n == DefaultChunkBytes {
			c.flush()
		}
	}
	return written, nil
}

func (c *chunkHasher) flush() {
	c.sums = append(c.sums, hex.EncodeToString(c.h.Sum(nil)))
	c.h.Reset()
	c.n = 0
}

// finish returns the sums, the last chunk's included however short.
func (c *chunkHasher) finish() []string {
	if c.n > 0 {
		c.flush()
	}
	return c.sums
}
