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

// BenchmarkAppend measures durable appends per second of small rollouts. "appenders" call
// Append and wait, one rollout in flight each; "streams" are stream handlers that Submit up to
// "credits" rollouts ahead and take the results in order. fsync=false is for reference only.
func BenchmarkAppend(b *testing.B) {
	cases := []struct {
		fsync            bool
		streams, credits int
	}{
		{true, 1, 1}, {true, 16, 1}, {true, 64, 1},
		{true, 1, 32}, {true, 16, 32},
		{false, 1, 1}, {false, 16, 1},
	}
	for _, c := range cases {
		name := fmt.Sprintf("fsync=%t/appenders=%d", c.fsync, c.streams)
		if c.credits > 1 {
			name = fmt.Sprintf("fsync=%t/streams=%d/credits=%d", c.fsync, c.streams, c.credits)
		}
		b.Run(name, func(b *testing.B) { benchAppend(b, c.streams, c.credits, !c.fsync) })
	}
}

func benchAppend(b *testing.B, streams, credits int, noSync bool) {
	opts, _ := quietOptions(0)
	opts.NoSync = noSync
	l := mustOpen(b, b.TempDir(), opts)
	defer mustClose(b, l)
	b.SetBytes(int64(proto.Size(testRollout("actor-00", 1, benchTokens)) + headerBytes))
	var issued atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for a := range streams {
		// Each stream is one actor reusing one message; Submit keeps no reference to it.
		r := testRollout(fmt.Sprintf("actor-%02d", a), 1, benchTokens)
		wg.Go(func() {
			inFlight := make(chan (<-chan Result), credits)
			for seq := uint64(1); issued.Add(1) <= int64(b.N); seq++ {
				if len(inFlight) == credits && !awaitOne(b, inFlight) {
					return
				}
				r.Seq = seq
				done, err := l.Submit(context.Background(), r)
				if err != nil {
					b.Error(err)
					return
				}
				inFlight <- done
			}
			for len(inFlight) > 0 && awaitOne(b, inFlight) {
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
	st := l.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "records/commit")
}

// awaitOne takes the oldest result in flight, as a stream handler sends acks in order.
func awaitOne(b *testing.B, inFlight chan (<-chan Result)) bool {
	if res := <-<-inFlight; res.Err != nil || res.Entry.Duplicate {
		b.Errorf("append: %+v", res)
		return false
	}
	return true
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
