package weights

import "encoding/hex"

// hashQueueChunks bounds how far file hashing may lag behind receiving, in chunks.
const hashQueueChunks = 8

// fileHash computes a file's digest (newFileDigest) on its own goroutine while Fetch receives,
// checks and writes the next chunks: hashing is a large share of a fetch's CPU work per byte, and
// this takes it off the receiving goroutine, onto a second core. Each buffer, once hashed, goes
// to done for reuse.
type fileHash struct {
	data chan []byte
	sum  chan string
}

func newFileHash(done func([]byte)) *fileHash {
	h := &fileHash{data: make(chan []byte, hashQueueChunks), sum: make(chan string, 1)}
	go func() {
		d := newFileDigest()
		for b := range h.data {
			d.Write(b)
			done(b)
		}
		h.sum <- hex.EncodeToString(d.Sum(nil))
	}()
	return h
}

// write appends b to the file; b belongs to the hash from now on.
func (h *fileHash) write(b []byte) { h.data <- b }

// finish returns the hex digest of everything written.
func (h *fileHash) finish() string {
	close(h.data)
	return <-h.sum
}

// stop ends the goroutine without waiting for it.
func (h *fileHash) stop() { close(h.data) }
