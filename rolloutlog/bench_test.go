package rolloutlog

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/proto"
)

// benchTokens is a small rollout: one sample of 100 completion tokens with log-probs.
const benchTokens = 100

// BenchmarkAppend measures durable appends per second of small rollouts, with fsync (the
// learner's setting) and without, from one appender and from sixteen (group commit).
func BenchmarkAppend(b *testing.B) {
	for _, noSync := range []bool{false, true} {
		for _, appenders := range []int{1, 16} {
			name := fmt.Sprintf("fsync=%t/appenders=%d", !noSync, appenders)
			b.Run(name, func(b *testing.B) { benchAppend(b, appenders, noSync) })
		}
	}
}

func benchAppend(b *testing.B, appenders int, noSync bool) {
	opts, _ := quietOptions(0)
	opts.NoSync = noSync
	l := mustOpen(b, b.TempDir(), opts)
	defer mustClose(b, l)
	b.SetBytes(int64(proto.Size(testRollout("actor-00", 1, benchTokens)) + headerBytes))
	var issued atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for a := range appenders {
		// Each appender is one actor reusing one message; Append keeps no reference to it.
		r := testRollout(fmt.Sprintf("actor-%02d", a), 1, benchTokens)
		wg.Go(func() {
			for seq := uint64(1); issued.Add(1) <= int64(b.N); seq++ {
				r.Seq = seq
				if _, err := l.Append(context.Background(), r); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	st := l.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "records/commit")
}

// BenchmarkRead measures reading records back in batches, as the training loop does.
func BenchmarkRead(b *testing.B) {
	const records, batch = 20_000, 256
	l, size := filledLog(b, records)
	defer mustClose(b, l)
	b.SetBytes(size / records)
	b.ResetTimer()
	for i := 0; i < b.N; i += batch {
		from := uint64(i%records) + 1
		if _, err := l.Read(from, min(batch, b.N-i)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkOpen measures recovery: scanning, checking and indexing every record on Open.
func BenchmarkOpen(b *testing.B) {
	const records = 20_000
	l, size := filledLog(b, records)
	dir := l.dir
	mustClose(b, l)
	opts, _ := quietOptions(0)
	b.SetBytes(size)
	b.ResetTimer()
	for range b.N {
		mustClose(b, mustOpen(b, dir, opts))
	}
	b.ReportMetric(float64(records*b.N)/b.Elapsed().Seconds(), "records/s")
}

// filledLog returns an open log of n small rollouts (written without fsync) and its size.
func filledLog(b *testing.B, n int) (*Log, int64) {
	opts, _ := quietOptions(0)
	opts.NoSync = true
	l := mustOpen(b, b.TempDir(), opts)
	r := testRollout("actor-00", 1, benchTokens)
	for seq := range uint64(n) {
		r.Seq = seq + 1
		if _, err := l.Append(context.Background(), r); err != nil {
			b.Fatal(err)
		}
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	var size int64
	for _, s := range l.segs {
		size += s.size
	}
	return l, size
}
