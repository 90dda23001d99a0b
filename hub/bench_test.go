package hub

import (
	"context"
	"math/rand/v2"
	"os"
	"testing"
)

// BenchmarkDownload measures a cold download of a 64 MiB LFS file through the hub's redirect
// from a loopback server into a fresh cache: HTTP, sha256, disk writes and the rename together.
func BenchmarkDownload(b *testing.B) {
	const size = 64 << 20
	h := newFakeHub(b)
	weights := make([]byte, size)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range weights {
		weights[i] = byte(rng.Uint32())
	}
	h.files["model.safetensors"] = lfsFile(weights)
	o := h.options(b)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		cache, err := os.MkdirTemp(b.TempDir(), "cache")
		if err != nil {
			b.Fatal(err)
		}
		o.CacheDir = cache
		b.StartTimer()
		if _, err := Resolve(context.Background(), h.ref(), o); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		os.RemoveAll(cache)
		b.StartTimer()
	}
}

// BenchmarkResolveCached measures the no-network path a training run takes at every start.
func BenchmarkResolveCached(b *testing.B) {
	h := newFakeHub(b)
	o := h.options(b)
	if _, err := Resolve(context.Background(), h.ref(), o); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		if _, err := Resolve(context.Background(), h.ref(), o); err != nil {
			b.Fatal(err)
		}
	}
}
