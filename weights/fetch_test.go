package weights_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// quick are FetchOptions for tests: no pause between retries.
var quick = weights.FetchOptions{RetryBackoff: time.Microsecond}

// errorLog collects the errors Fetch reports through OnError.
type errorLog struct {
	mu   sync.Mutex
	errs []error
}

func (l *errorLog) add(_ string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.errs = append(l.errs, err)
}

func (l *errorLog) count(target error) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, err := range l.errs {
		if errors.Is(err, target) {
			n++
		}
	}
	return n
}

func TestFetchRoundTrip(t *testing.T) {
	files := randomFiles(20, 17<<20+12345) // past writebackBytes twice
	src, want := storeWith(t, 9, files)
	for _, chunk := range []int{0, weights.MinChunkBytes, weights.MaxChunkBytes} {
		t.Run(fmt.Sprintf("chunk %d", chunk), func(t *testing.T) {
			srv := weights.NewServer(src)
			dst := newStore(t)
			var last weights.Progress
			opts := weights.FetchOptions{ChunkBytes: chunk, Progress: func(p weights.Progress) { last = p }}
			m, err := weights.Fetch(context.Background(), []weights.Source{{Name: "learner", Client: serve(t, srv)}}, 9, want.GetSha256(), dst, opts)
			if err != nil {
				t.Fatal(err)
			}
			if m.GetSha256() != want.GetSha256() || !dst.Has(9) {
				t.Fatalf("fetched %s, has %v", m.GetSha256(), dst.Has(9))
			}
			sameFiles(t, dst.Dir(9), files)
			if err := dst.Verify(9); err != nil {
				t.Error(err)
			}
			if last.Bytes != last.Total || last.Total != totalSize(files) || last.Source != "learner" {
				t.Errorf("last progress %+v, want %d bytes", last, totalSize(files))
			}
			if st := srv.Stats(); st.Bytes != totalSize(files) || st.Streams != 1 {
				t.Errorf("server sent %+v, want one stream of %d bytes", st, totalSize(files))
			}
			// Present now: a second Fetch returns at once and sends nothing.
			if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "learner", Client: serve(t, srv)}}, 9, want.GetSha256(), dst, opts); err != nil {
				t.Error(err)
			}
			if st := srv.Stats(); st.Streams != 1 {
				t.Errorf("a second Fetch of a stored version streamed again: %+v", st)
			}
		})
	}
}

// TestFetchCorruptChunks flips a bit in a chunk of the first two streams: each is detected, and
// the next stream resumes at that chunk rather than at the start.
func TestFetchCorruptChunks(t *testing.T) {
	files := randomFiles(21, 2<<20)
	src, want := storeWith(t, 1, files)
	// The server runs ahead of the client by up to a flow control window, so a chunk sent is
	// not necessarily a chunk seen: corrupt one chunk per stream, at offsets the client reaches.
	corruptAt := []int64{3 * 64 << 10, 20 * 64 << 10}
	hook := &hookServer{inner: weights.NewServer(src), hook: func(_ context.Context, stream int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" && stream < len(corruptAt) && c.Offset == corruptAt[stream] {
			c.Data[len(c.Data)/2] ^= 0x10
		}
		return nil
	}}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	dst := newStore(t)
	if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, hook)}}, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	if n := log.count(weights.ErrCorruptChunk); n != 2 {
		t.Errorf("%d corrupt chunks reported, want 2: %v", n, log.errs)
	}
	reqs := hook.Requests()
	if len(reqs) != 3 || reqs[1].ResumeFile != "model.safetensors" || reqs[1].ResumeOffset != 3*64<<10 || reqs[2].ResumeOffset != 20*64<<10 {
		t.Errorf("requests %v, want resumes at the two corrupt chunks", reqs)
	}
}

// TestFetchPersistentCorruption leaves a source that corrupted a chunk at once, without retrying
// it, when another source remains, and finishes from the next one, from where the first stopped.
func TestFetchPersistentCorruption(t *testing.T) {
	files := randomFiles(22, 1<<20)
	src, want := storeWith(t, 1, files)
	bad := &hookServer{inner: weights.NewServer(src), hook: func(_ context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" && c.Offset == 5*64<<10 {
			c.Data[0] ^= 1
		}
		return nil
	}}
	good := &hookServer{inner: weights.NewServer(src)}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.MaxRetries, opts.OnError = 64<<10, 3, log.add
	dst := newStore(t)
	sources := []weights.Source{{Name: "bad", Client: serve(t, bad)}, {Name: "good", Client: serve(t, good)}}
	if _, err := weights.Fetch(context.Background(), sources, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	if n := len(bad.Requests()); n != 1 {
		t.Errorf("bad source asked %d times, want once", n)
	}
	if n := log.count(weights.ErrCorruptChunk); n != 1 {
		t.Errorf("%d corrupt chunks reported, want 1: %v", n, log.errs)
	}
	if r := good.Requests(); len(r) != 1 || r[0].ResumeFile != "model.safetensors" || r[0].ResumeOffset != 5*64<<10 {
		t.Errorf("good source asked %v, want one resume at the bad chunk", r)
	}
}

// TestFetchStreamCut breaks the first stream mid-file; the second resumes where it stopped.
func TestFetchStreamCut(t *testing.T) {
	files := randomFiles(23, 1<<20)
	src, want := storeWith(t, 1, files)
	srv := weights.NewServer(src)
	sent := 0
	hook := &hookServer{inner: srv, hook: func(_ context.Context, stream int, msg *tsdv1.WeightMessage) error {
		if stream == 0 && msg.GetChunk() != nil {
			if sent++; sent > 6 { // config, generation_config, then 4 chunks of the model
				return status.Error(codes.Unavailable, "connection reset")
			}
		}
		return nil
	}}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	dst := newStore(t)
	if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, hook)}}, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	reqs := hook.Requests()
	if len(reqs) != 2 || reqs[1].ResumeFile != "model.safetensors" || reqs[1].ResumeOffset != 4*64<<10 {
		t.Errorf("requests %v, want a resume at model.safetensors offset %d", reqs, 4*64<<10)
	}
	if st := srv.Stats(); st.Bytes != totalSize(files) {
		t.Errorf("server sent %d bytes for %d: the resume restarted", st.Bytes, totalSize(files))
	}
	if len(log.errs) != 1 || status.Code(log.errs[0]) != codes.Unavailable {
		t.Errorf("errors %v", log.errs)
	}
}

// TestFetchStall ends a stream that goes quiet and resumes it.
func TestFetchStall(t *testing.T) {
	files := randomFiles(24, 512<<10)
	src, want := storeWith(t, 1, files)
	hook := &hookServer{inner: weights.NewServer(src), hook: func(ctx context.Context, stream int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); stream == 0 && c != nil && c.File == "model.safetensors" && c.Offset > 0 {
			<-ctx.Done() // silent until the client gives up
			return ctx.Err()
		}
		return nil
	}}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.StallTimeout, opts.OnError = 64<<10, 50*time.Millisecond, log.add
	dst := newStore(t)
	if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, hook)}}, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	if log.count(weights.ErrStalled) != 1 {
		t.Errorf("errors %v, want one stall", log.errs)
	}
	if r := hook.Requests(); len(r) != 2 || r[1].ResumeOffset != 64<<10 {
		t.Errorf("requests %v", r)
	}
}

// TestFetchWrongFile serves chunks that match their own CRC-32C but not the manifest's file
// digest: the file is refused, the source abandoned, and the next source sends it from its start.
func TestFetchWrongFile(t *testing.T) {
	files := randomFiles(25, 300<<10)
	src, want := storeWith(t, 1, files)
	liar := &hookServer{inner: weights.NewServer(src), hook: func(_ context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.File == "model.safetensors" {
			c.Data[0] ^= 1
			c.Crc32C = crc32c(c.Data)
		}
		return nil
	}}
	honest := &hookServer{inner: weights.NewServer(src)}
	var log errorLog
	opts := quick
	opts.ChunkBytes, opts.OnError = 64<<10, log.add
	dst := newStore(t)
	sources := []weights.Source{{Name: "liar", Client: serve(t, liar)}, {Name: "honest", Client: serve(t, honest)}}
	if _, err := weights.Fetch(context.Background(), sources, 1, want.GetSha256(), dst, opts); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(1), files)
	if len(liar.Requests()) != 1 || log.count(weights.ErrDigest) != 1 {
		t.Errorf("liar asked %d times, errors %v", len(liar.Requests()), log.errs)
	}
	if r := honest.Requests(); len(r) != 1 || r[0].ResumeFile != "model.safetensors" || r[0].ResumeOffset != 0 {
		t.Errorf("honest source asked %v, want model.safetensors from 0", r)
	}
}

// TestFetchRefused covers failures that leave nothing in the store.
func TestFetchRefused(t *testing.T) {
	files := randomFiles(26, 100<<10)
	src, want := storeWith(t, 1, files)
	c := serve(t, weights.NewServer(src))
	tests := []struct {
		name    string
		version uint64
		sha     string
		want    []error
	}{
		{"wrong digest", 1, sha256Hex([]byte("another checkpoint")), []error{weights.ErrSources, weights.ErrDigest}},
		{"unknown version", 2, want.GetSha256(), []error{weights.ErrSources, weights.ErrNotFound}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := newStore(t)
			_, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: c}, {Name: "b", Client: c}}, tt.version, tt.sha, dst, quick)
			for _, w := range tt.want {
				if !errors.Is(err, w) {
					t.Errorf("Fetch: %v, want %v", err, w)
				}
			}
			assertEmpty(t, dst)
		})
	}
}

func TestFetchArguments(t *testing.T) {
	s, want := storeWith(t, 1, randomFiles(27, 100))
	c := serve(t, weights.NewServer(s))
	good := []weights.Source{{Name: "a", Client: c}}
	tests := []struct {
		name    string
		sources []weights.Source
		sha     string
		store   *weights.Store
		opts    weights.FetchOptions
	}{
		{"no sources", nil, want.GetSha256(), newStore(t), quick},
		{"nil client", []weights.Source{{Name: "a"}}, want.GetSha256(), newStore(t), quick},
		{"short sha", good, "abc", newStore(t), quick},
		{"uppercase sha", good, "A" + want.GetSha256()[1:], newStore(t), quick},
		{"no store", good, want.GetSha256(), nil, quick},
		{"chunk too small", good, want.GetSha256(), newStore(t), weights.FetchOptions{ChunkBytes: 1000}},
		{"chunk too large", good, want.GetSha256(), newStore(t), weights.FetchOptions{ChunkBytes: 8 << 20}},
		{"negative retries", good, want.GetSha256(), newStore(t), weights.FetchOptions{MaxRetries: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := weights.Fetch(context.Background(), tt.sources, 1, tt.sha, tt.store, tt.opts); !errors.Is(err, weights.ErrArgument) {
				t.Errorf("Fetch: %v, want ErrArgument", err)
			}
		})
	}
	// A store holding the version with another digest.
	other, _ := storeWith(t, 1, randomFiles(28, 100))
	if _, err := weights.Fetch(context.Background(), good, 1, want.GetSha256(), other, quick); !errors.Is(err, weights.ErrConflict) {
		t.Errorf("Fetch into a store with another v1: %v, want ErrConflict", err)
	}
}

// TestFetchMalicious points Fetch at sources whose manifest or chunks try to write outside the
// import directory, lie about sizes or break the protocol. The digest the coordinator recorded
// is the malicious manifest's own, so only the checks on names and structure can stop it.
func TestFetchMalicious(t *testing.T) {
	data := []byte("pwned")
	file := func(name string, size int64) *tsdv1.WeightFile {
		return &tsdv1.WeightFile{Name: name, Size: size, Blake3: blake3Hex(data)}
	}
	manifest := func(files ...*tsdv1.WeightFile) *tsdv1.WeightManifest {
		return &tsdv1.WeightManifest{Version: 1, Sha256: weights.Digest(files), Files: files}
	}
	good := manifest(file("config.json", 5))
	tests := []struct {
		name string
		msgs []*tsdv1.WeightMessage
		opts weights.FetchOptions
		want error
	}{
		{"parent directory", []*tsdv1.WeightMessage{manifestMsg(manifest(file("../x", 5))), chunkMsg("../x", 0, data)}, quick, weights.ErrManifest},
		{"deeper parent", []*tsdv1.WeightMessage{manifestMsg(manifest(file("../../x", 5)))}, quick, weights.ErrManifest},
		{"absolute path", []*tsdv1.WeightMessage{manifestMsg(manifest(file("/tmp/x", 5)))}, quick, weights.ErrManifest},
		{"subdirectory", []*tsdv1.WeightMessage{manifestMsg(manifest(file("a/x", 5)))}, quick, weights.ErrManifest},
		{"empty name", []*tsdv1.WeightMessage{manifestMsg(manifest(file("", 5)))}, quick, weights.ErrManifest},
		{"duplicate", []*tsdv1.WeightMessage{manifestMsg(manifest(file("x", 5), file("x", 5)))}, quick, weights.ErrManifest},
		{"no files", []*tsdv1.WeightMessage{manifestMsg(manifest())}, quick, weights.ErrManifest},
		{"too large", []*tsdv1.WeightMessage{manifestMsg(manifest(file("x", 1<<40)))}, quick, weights.ErrManifest},
		{"over the recorded size", []*tsdv1.WeightMessage{manifestMsg(good)}, weights.FetchOptions{MaxBytes: 4}, weights.ErrManifest},
		{"too many files", []*tsdv1.WeightMessage{manifestMsg(manifest(file("a", 5), file("b", 5)))}, weights.FetchOptions{MaxFiles: 1}, weights.ErrManifest},
		{"another version", []*tsdv1.WeightMessage{manifestMsg(&tsdv1.WeightManifest{Version: 2, Sha256: good.Sha256, Files: good.Files})}, quick, weights.ErrManifest},
		{"chunk first", []*tsdv1.WeightMessage{chunkMsg("config.json", 0, data)}, quick, weights.ErrProtocol},
		{"chunk of another file", []*tsdv1.WeightMessage{manifestMsg(good), chunkMsg("../x", 0, data)}, quick, weights.ErrProtocol},
		{"chunk past the end", []*tsdv1.WeightMessage{manifestMsg(good), chunkMsg("config.json", 0, []byte("pwned!"))}, quick, weights.ErrProtocol},
		{"chunk at a gap", []*tsdv1.WeightMessage{manifestMsg(good), chunkMsg("config.json", 1, data[1:])}, quick, weights.ErrProtocol},
		{"empty chunk", []*tsdv1.WeightMessage{manifestMsg(good), chunkMsg("config.json", 0, nil)}, quick, weights.ErrProtocol},
		{"stream ends early", []*tsdv1.WeightMessage{manifestMsg(good)}, quick, weights.ErrProtocol},
		{"second manifest", []*tsdv1.WeightMessage{manifestMsg(good), manifestMsg(good)}, quick, weights.ErrProtocol},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			dst, err := weights.OpenStore(filepath.Join(parent, "store"))
			if err != nil {
				t.Fatal(err)
			}
			var wantSHA string
			if m := tt.msgs[0].GetManifest(); m != nil {
				wantSHA = m.Sha256
			} else {
				wantSHA = good.Sha256
			}
			tt.opts.MaxRetries = 1
			_, err = weights.Fetch(context.Background(), []weights.Source{{Name: "evil", Client: serve(t, &scriptServer{msgs: tt.msgs})}}, 1, wantSHA, dst, tt.opts)
			if !errors.Is(err, tt.want) || !errors.Is(err, weights.ErrSources) {
				t.Errorf("Fetch: %v, want %v", err, tt.want)
			}
			assertEmpty(t, dst)
			if entries, _ := os.ReadDir(parent); len(entries) != 1 {
				t.Errorf("something was written beside the store: %v", entries)
			}
		})
	}
}

// TestFetchConcurrent fetches one version into one store from several goroutines: all succeed
// and the source sends it once.
func TestFetchConcurrent(t *testing.T) {
	files := randomFiles(29, 1<<20)
	src, want := storeWith(t, 1, files)
	srv := weights.NewServer(src)
	c := serve(t, srv)
	dst := newStore(t)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			m, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: c}}, 1, want.GetSha256(), dst, quick)
			if err == nil && m.GetSha256() != want.GetSha256() {
				err = errors.New("wrong manifest")
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("fetch %d: %v", i, err)
		}
	}
	sameFiles(t, dst.Dir(1), files)
	if st := srv.Stats(); st.Streams != 1 || st.Bytes != totalSize(files) {
		t.Errorf("server %+v: the version was downloaded more than once", st)
	}
}

// TestFetchCancel stops on the caller's cancellation and leaves nothing behind.
func TestFetchCancel(t *testing.T) {
	files := randomFiles(30, 1<<20)
	src, want := storeWith(t, 1, files)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook := &hookServer{inner: weights.NewServer(src), hook: func(sctx context.Context, _ int, msg *tsdv1.WeightMessage) error {
		if c := msg.GetChunk(); c != nil && c.Offset > 0 {
			cancel()
			<-sctx.Done()
			return sctx.Err()
		}
		return nil
	}}
	dst := newStore(t)
	opts := quick
	opts.ChunkBytes = 64 << 10
	if _, err := weights.Fetch(ctx, []weights.Source{{Name: "a", Client: serve(t, hook)}, {Name: "b", Client: serve(t, hook)}}, 1, want.GetSha256(), dst, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("Fetch: %v, want context.Canceled", err)
	}
	if len(hook.Requests()) != 1 {
		t.Errorf("%d requests after cancellation", len(hook.Requests()))
	}
	assertEmpty(t, dst)
}

// assertEmpty fails unless s holds no version and its root nothing at all.
func assertEmpty(t *testing.T, s *weights.Store) {
	t.Helper()
	if v := s.Versions(); len(v) != 0 {
		t.Errorf("store holds %v", v)
	}
	if entries, _ := os.ReadDir(s.Root()); len(entries) != 0 {
		t.Errorf("store root holds %v", entries)
	}
}

func totalSize(files map[string][]byte) int64 {
	var n int64
	for _, d := range files {
		n += int64(len(d))
	}
	return n
}

// TestFetchEmptyFiles fetches a checkpoint of empty files only: no chunk at all is sent.
func TestFetchEmptyFiles(t *testing.T) {
	files := map[string][]byte{"a": {}, "b": {}}
	src, want := storeWith(t, 2, files)
	srv := weights.NewServer(src)
	dst := newStore(t)
	if _, err := weights.Fetch(context.Background(), []weights.Source{{Name: "a", Client: serve(t, srv)}}, 2, want.GetSha256(), dst, quick); err != nil {
		t.Fatal(err)
	}
	sameFiles(t, dst.Dir(2), files)
	if st := srv.Stats(); st.Chunks != 0 || st.Streams != 1 {
		t.Errorf("server %+v", st)
	}
}
