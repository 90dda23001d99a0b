package weights_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// corrupting serves store with every model chunk's bytes flipped (its CRC-32C left as it was): a
// peer with bad memory or a bad disk. onCorrupt runs before the first corrupt chunk is sent.
func corrupting(store *weights.Store, onCorrupt func()) *hookServer {
	var once sync.Once
	return &hookServer{inner: weights.NewServer(store), hook: func(_ context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" {
			if onCorrupt != nil {
				once.Do(onCorrupt)
			}
			c.Data[0] ^= 1
		}
		return nil
	}}
}

// requestsFor counts the requests h got for version.
func requestsFor(h *hookServer, version uint64) int {
	n := 0
	for _, r := range h.Requests() {
		if r.GetVersion() == version {
			n++
		}
	}
	return n
}

// TestFetchNewestPrunedMidway is defect 9 of the fault-injection report: a fresh actor picks
// version 1, its first source (a peer) serves corrupt bytes, and by the time it asks the learner,
// the learner has published version 2 and pruned version 1 (NotFound everywhere). The fetch moves
// to version 2 and gets it; the corrupt peer was asked for version 1 once.
func TestFetchNewestPrunedMidway(t *testing.T) {
	v1, v2 := randomFiles(40, 512<<10), randomFiles(41, 512<<10)
	learnerStore, m1 := storeWith(t, 1, v1)
	var (
		mu     sync.Mutex
		latest = m1
	)
	peerStore, _ := storeWith(t, 1, v1)
	peer := corrupting(peerStore, func() { // the learner moves on while the peer streams
		m2, err := learnerStore.Put(2, writeCheckpoint(t, v2))
		if err != nil {
			t.Error(err)
			return
		}
		if _, err := learnerStore.Keep(1); err != nil {
			t.Error(err)
		}
		mu.Lock()
		latest = m2
		mu.Unlock()
	})
	learner := &hookServer{inner: weights.NewServer(learnerStore)}
	sources := []weights.Source{{Name: "peer", Client: serve(t, peer)}, {Name: "learner", Client: serve(t, learner)}}
	newest := func(context.Context) (weights.Target, error) {
		mu.Lock()
		defer mu.Unlock()
		return weights.Target{Version: latest.GetVersion(), SHA256: latest.GetSha256(), Sources: sources}, nil
	}
	var log errorLog
	var retried []uint64
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	dst := newStore(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := weights.FetchNewest(ctx, newest, dst, opts, func(tg weights.Target, _ error) { retried = append(retried, tg.Version) })
	if err != nil {
		t.Fatalf("FetchNewest: %v", err)
	}
	if m.GetVersion() != 2 || !dst.Has(2) || dst.Has(1) {
		t.Fatalf("fetched version %d; store holds %v, want version 2 only", m.GetVersion(), dst.Versions())
	}
	sameFiles(t, dst.Dir(2), v2)
	if len(retried) != 1 || retried[0] != 1 {
		t.Errorf("retries %v, want one, for version 1", retried)
	}
	if n := requestsFor(peer, 1); n != 1 {
		t.Errorf("the corrupt peer was asked for version 1 %d times, want once", n)
	}
	if n := log.count(weights.ErrCorruptChunk); n != 1 {
		t.Errorf("%d corrupt chunks reported, want 1: %v", n, log.errs)
	}
}

// TestFetchNewestSkipsCorruptPeers: three peers serve corrupt bytes and the learner is briefly
// unable to serve; in the second round, for the same version, only the learner is asked: a peer
// that sent corrupt bytes for a version is not tried again for it.
func TestFetchNewestSkipsCorruptPeers(t *testing.T) {
	files := randomFiles(42, 256<<10)
	learnerStore, m := storeWith(t, 1, files)
	var sources []weights.Source
	var peers []*hookServer
	for _, name := range []string{"p1", "p2", "p3"} {
		st, _ := storeWith(t, 1, files)
		p := corrupting(st, nil)
		peers = append(peers, p)
		sources = append(sources, weights.Source{Name: name, Client: serve(t, p)})
	}
	learner := &hookServer{inner: weights.NewServer(learnerStore), hook: func(_ context.Context, stream int, _ *tsdv1.WeightMessage) error {
		if stream == 0 {
			return status.Error(codes.NotFound, "not yet") // e.g. a learner that just restarted
		}
		return nil
	}}
	sources = append(sources, weights.Source{Name: "learner", Client: serve(t, learner)})
	newest := func(context.Context) (weights.Target, error) {
		return weights.Target{Version: 1, SHA256: m.GetSha256(), Sources: sources}, nil
	}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst := newStore(t)
	if _, err := weights.FetchNewest(ctx, newest, dst, opts, nil); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	for i, p := range peers {
		if n := len(p.Requests()); n != 1 {
			t.Errorf("corrupt peer %d asked %d times, want once", i+1, n)
		}
	}
	if n := log.count(weights.ErrCorruptChunk); n != 3 {
		t.Errorf("%d corrupt-chunk reports, want one per peer: %v", n, log.errs)
	}
	if n := len(learner.Requests()); n != 2 {
		t.Errorf("learner asked %d times, want twice", n)
	}
}

// TestFetchNewestGivesUpOnLocalErrors: a failure on this side (here a store holding the version
// with other contents) is returned, not retried.
func TestFetchNewestGivesUpOnLocalErrors(t *testing.T) {
	src, m := storeWith(t, 1, randomFiles(43, 1000))
	other, _ := storeWith(t, 1, randomFiles(44, 1000))
	calls := 0
	newest := func(context.Context) (weights.Target, error) {
		calls++
		return weights.Target{Version: 1, SHA256: m.GetSha256(), Sources: []weights.Source{{Name: "a", Client: serve(t, weights.NewServer(src))}}}, nil
	}
	if _, err := weights.FetchNewest(context.Background(), newest, other, quick, nil); !errors.Is(err, weights.ErrConflict) || calls != 1 {
		t.Fatalf("FetchNewest: %v after %d rounds, want ErrConflict after one", err, calls)
	}
}

// TestFetchSwitchesFromStalledPeer: a peer that sends its manifest and then nothing is left for
// the next source after SwitchAfter, long before StallTimeout; the learner's stream resumes at
// what the peer had verified.
func TestFetchSwitchesFromStalledPeer(t *testing.T) {
	files := randomFiles(45, 512<<10)
	src, want := storeWith(t, 1, files)
	stalled := &hookServer{inner: weights.NewServer(src), hook: func(ctx context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if msg.GetManifest() == nil {
			<-ctx.Done() // the manifest goes out, then nothing
			return ctx.Err()
		}
		return nil
	}}
	learner := &hookServer{inner: weights.NewServer(src)}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	opts.StallTimeout, opts.SwitchAfter = 10*time.Minute, 100*time.Millisecond
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dst := newStore(t)
	sources := []weights.Source{{Name: "peer", Client: serve(t, stalled)}, {Name: "learner", Client: serve(t, learner)}}
	if _, err := weights.Fetch(ctx, sources, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	sameFiles(t, dst.Dir(1), files)
	if n := len(stalled.Requests()); n != 1 || log.count(weights.ErrStalled) != 1 {
		t.Errorf("stalled peer asked %d times, errors %v; want once, one stall", n, log.errs)
	}
	if n := len(learner.Requests()); n != 1 {
		t.Errorf("learner asked %d times, want once", n)
	}
}
