package weights_test

import (
	"context"
	"slices"
	"testing"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// TestRelay is the broadcast the design relies on: actor A fetches from the learner, actor B
// fetches from A (the learner listed last, as a fallback), and the learner sends one copy.
func TestRelay(t *testing.T) {
	files := randomFiles(40, 2<<20)
	learnerStore, want := storeWith(t, 3, files)
	learner := weights.NewServer(learnerStore)
	learnerClient := serve(t, learner)

	storeA := newStore(t)
	if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "learner", Client: learnerClient}}, 3, want.GetSha256(), storeA, quick); err != nil {
		t.Fatal(err)
	}
	actorA := weights.NewServer(storeA)
	storeB := newStore(t)
	sources := []weights.Source{{Name: "actor-a", Client: serve(t, actorA)}, {Name: "learner", Client: learnerClient}}
	if _, err := weights.Fetch(context.Background(), sources, 3, want.GetSha256(), storeB, quick); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, storeB.Dir(3), files)
	size := totalSize(files)
	if got := learner.Stats().Bytes; got != size {
		t.Errorf("learner sent %d bytes, want one copy (%d)", got, size)
	}
	if got := actorA.Stats().Bytes; got != size {
		t.Errorf("actor A relayed %d bytes, want %d", got, size)
	}
}

// TestKeepWhileServing runs Keep on a peer while it streams the version Keep would delete: the
// version survives until the stream ends, and the fetch completes intact.
func TestKeepWhileServing(t *testing.T) {
	files := randomFiles(41, 1<<20)
	peerStore, want := storeWith(t, 1, files)
	if _, err := peerStore.Put(2, writeCheckpoint(t, randomFiles(42, 100))); err != nil {
		t.Fatal(err)
	}
	streaming, resume := make(chan struct{}), make(chan struct{})
	hook := &hookServer{inner: weights.NewServer(peerStore), hook: func(_ context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" && c.Offset == 64<<10 {
			close(streaming)
			<-resume
		}
		return nil
	}}
	dst := newStore(t)
	opts := quick
	opts.ChunkBytes = 64 << 10
	done := make(chan error, 1)
	go func() {
		_, err := weights.Fetch(context.Background(), []weights.Source{{Name: "peer", Client: serve(t, hook)}}, 1, want.GetSha256(), dst, opts)
		done <- err
	}()
	<-streaming
	removed, err := peerStore.Keep(0)
	if err != nil || !slices.Equal(removed, []uint64{2}) {
		t.Errorf("Keep(0) mid-stream removed %v (%v), want only the idle v2", removed, err)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	if removed, err := peerStore.Keep(0); err != nil || !slices.Equal(removed, []uint64{1}) {
		t.Errorf("Keep(0) after the stream removed %v (%v), want v1", removed, err)
	}
}

// TestKeepSparesLoadedAndServed is an actor's pruning: it holds the version it has loaded (an
// old one, while a newer is being swapped in) and a peer is fetching another old one from it.
// Keep(2) removes only the idle old version; once both are released, Keep(2) leaves the two
// newest.
func TestKeepSparesLoadedAndServed(t *testing.T) {
	store := newStore(t)
	for v := uint64(1); v <= 5; v++ {
		if _, err := store.Put(v, writeCheckpoint(t, randomFiles(50+v, 256<<10))); err != nil {
			t.Fatal(err)
		}
	}
	loaded, err := store.Acquire(1)
	if err != nil {
		t.Fatal(err)
	}
	want, err := store.Get(2)
	if err != nil {
		t.Fatal(err)
	}
	streaming, resume := make(chan struct{}), make(chan struct{})
	hook := &hookServer{inner: weights.NewServer(store), hook: func(_ context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" && c.Offset == 64<<10 {
			close(streaming)
			<-resume
		}
		return nil
	}}
	opts := quick
	opts.ChunkBytes = 64 << 10
	done := make(chan error, 1)
	go func() {
		_, err := weights.Fetch(context.Background(), []weights.Source{{Name: "actor", Client: serve(t, hook)}}, 2, want.GetSha256(), newStore(t), opts)
		done <- err
	}()
	<-streaming
	if removed, err := store.Keep(2); err != nil || !slices.Equal(removed, []uint64{3}) {
		t.Errorf("Keep(2) with v1 loaded and v2 streaming removed %v (%v), want v3", removed, err)
	}
	if got := store.Versions(); !slices.Equal(got, []uint64{1, 2, 4, 5}) {
		t.Errorf("versions %v, want 1 (loaded), 2 (streaming), 4, 5", got)
	}
	close(resume)
	if err := <-done; err != nil {
		t.Fatalf("the peer's fetch of v2: %v", err)
	}
	loaded.Release()
	if removed, err := store.Keep(2); err != nil || !slices.Equal(removed, []uint64{2, 1}) {
		t.Errorf("Keep(2) after both were released removed %v (%v), want v2 and v1", removed, err)
	}
	if got := store.Versions(); !slices.Equal(got, []uint64{4, 5}) {
		t.Errorf("versions %v, want 4, 5", got)
	}
}
