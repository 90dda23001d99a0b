package weights

import (
	"crypto/sha256"
	"encoding/hex"
)

// hashQueueChunks bounds how far file hashing may lag behind receiving, in chunks.
const hashQueueChunks = 8

// fileHash computes a file's sha256 on its own goroutine while Fetch receives, checks and writes
// the next chunks: the sha256 is most of a fetch's CPU work per byte, and this takes it off the
// receiving goroutine, onto a second core. Each buffer, once hashed, goes to done for reuse.
type fileHash struct {
	data chan []byte
	sum  chan string
}

func newFileHash(done func([]byte)) *fileHash {
	h := &fileHash{data: make(chan []byte, hashQueueChunks), sum: make(chan string, 1)}
	go func() {
		d := sha256.New()
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

// finish returns the hex sha256 of everything written.
func (h *fileHash) finish() string {
	close(h.data)
	return <-h.sum
}

// stop ends the goroutine without waiting for it.
func (h *fileHash) stop() { close(h.data) }
