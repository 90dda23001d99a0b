package tokenizer

import (
	"strings"
	"sync"
)

// The word cache remembers the ids of recent pieces: text repeats its words, and a map lookup is
// far cheaper than merging. It is bounded (a shard that fills up is emptied) and sharded so that
// EncodeBatch's goroutines rarely wait on each other.
const (
	cacheShards    = 16
	cacheShardSize = 4096 // words per shard
	cacheMaxWord   = 64   // longer pieces are rare and not cached
)

type wordCache struct {
	shards [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string][]int32
	_  [40]byte // keep shards on separate cache lines
}

func newWordCache() *wordCache {
	c := &wordCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[string][]int32)
	}
	return c
}

// shard picks a shard from a few bytes of the word; len(w) >= 2.
func (c *wordCache) shard(w string) *cacheShard {
	h := uint(len(w)) + 31*uint(w[len(w)-1]) + 7*uint(w[1])
	return &c.shards[h%cacheShards]
}

func (c *wordCache) get(w string) ([]int32, bool) {
	if len(w) > cacheMaxWord {
		return nil, false
	}
	s := c.shard(w)
	s.mu.RLock()
	ids, ok := s.m[w]
	s.mu.RUnlock()
	return ids, ok
}

// put stores copies of w and ids: w may be a slice of a large text the cache must not pin.
func (c *wordCache) put(w string, ids []int32) {
	if len(w) > cacheMaxWord {
		return
	}
	s := c.shard(w)
	key, val := strings.Clone(w), append([]int32(nil), ids...)
	s.mu.Lock()
	if len(s.m) >= cacheShardSize {
		clear(s.m)
	}
	s.m[key] = val
	s.mu.Unlock()
}
