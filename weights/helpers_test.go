package weights_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/test/bufconn"
	"lukechampine.com/blake3"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// writeCheckpoint writes files into a new directory and returns it.
func writeCheckpoint(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// randomFiles is a small checkpoint in Hugging Face layout with random weights of modelBytes,
// an empty file (which travels without chunks) and a name sorting after the model.
func randomFiles(seed uint64, modelBytes int) map[string][]byte {
	rng := rand.New(rand.NewPCG(seed, 1))
	model := make([]byte, modelBytes)
	for i := range model {
		model[i] = byte(rng.Uint32())
	}
	return map[string][]byte{
		"config.json":            []byte(`{"model_type":"qwen2","hidden_size":64}`),
		"empty.txt":              {},
		"model.safetensors":      model,
		"tokenizer.json":         []byte(`{"version":"1.0"}`),
		"generation_config.json": []byte(`{"do_sample":true}`),
	}
}

// newStore opens a store in a fresh directory.
func newStore(t testing.TB) *weights.Store {
	t.Helper()
	s, err := weights.OpenStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeWith opens a store holding version v of files.
func storeWith(t testing.TB, v uint64, files map[string][]byte) (*weights.Store, *tsdv1.WeightManifest) {
	t.Helper()
	s := newStore(t)
	m, err := s.Put(v, writeCheckpoint(t, files))
	if err != nil {
		t.Fatal(err)
	}
	return s, m
}

// serve runs srv on an in-memory connection with the package's recommended options and
// returns a client for it.
func serve(t testing.TB, srv tsdv1.WeightsServer) tsdv1.WeightsClient {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	gs := grpc.NewServer(weights.ServerOptions()...)
	tsdv1.RegisterWeightsServer(gs, srv)
	go gs.Serve(lis)
	opts := append(weights.DialOptions(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	cc, err := grpc.NewClient("passthrough:///bufconn", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cc.Close()
		gs.Stop()
	})
	return tsdv1.NewWeightsClient(cc)
}

// hookServer wraps a Weights server, recording requests and passing every sent message
// through hook, which may change it, or fail the stream by returning an error. stream counts
// the Fetch calls from 0.
type hookServer struct {
	tsdv1.UnimplementedWeightsServer
	inner tsdv1.WeightsServer
	hook  func(ctx context.Context, stream int, msg *tsdv1.WeightMessage) error
	done  chan struct{} // receives after each Fetch returns, if not nil

	mu       sync.Mutex
	requests []*tsdv1.FetchRequest
}

func (h *hookServer) Fetch(req *tsdv1.FetchRequest, stream grpc.ServerStreamingServer[tsdv1.WeightMessage]) error {
	h.mu.Lock()
	n := len(h.requests)
	h.requests = append(h.requests, req)
	h.mu.Unlock()
	err := h.inner.Fetch(req, &hookStream{ServerStreamingServer: stream, send: func(m *tsdv1.WeightMessage) error {
		if h.hook == nil {
			return nil
		}
		return h.hook(stream.Context(), n, m)
	}})
	if h.done != nil {
		h.done <- struct{}{}
	}
	return err
}

// Requests returns the requests so far.
func (h *hookServer) Requests() []*tsdv1.FetchRequest {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]*tsdv1.FetchRequest(nil), h.requests...)
}

type hookStream struct {
	grpc.ServerStreamingServer[tsdv1.WeightMessage]
	send func(*tsdv1.WeightMessage) error
}

func (s *hookStream) Send(m *tsdv1.WeightMessage) error {
	if err := s.send(m); err != nil {
		return err
	}
	return s.ServerStreamingServer.Send(m)
}

// scriptServer sends the same messages on every stream, whatever was asked: a malicious or
// broken source.
type scriptServer struct {
	tsdv1.UnimplementedWeightsServer
	msgs []*tsdv1.WeightMessage
}

func (s *scriptServer) Fetch(_ *tsdv1.FetchRequest, stream grpc.ServerStreamingServer[tsdv1.WeightMessage]) error {
	for _, m := range s.msgs {
		if err := stream.Send(m); err != nil {
			return err
		}
	}
	return nil
}

func manifestMsg(m *tsdv1.WeightManifest) *tsdv1.WeightMessage {
	return &tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Manifest{Manifest: m}}
}

func chunkMsg(file string, offset int64, data []byte) *tsdv1.WeightMessage {
	return &tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Chunk{Chunk: &tsdv1.WeightChunk{
		File: file, Offset: offset, Data: data, Crc32C: crc32c(data)}}}
}

// crc32c is a chunk's sum, spelled out from the proto's definition.
func crc32c(data []byte) uint32 { return crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)) }

func sha256Hex(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// blake3Hex is how a manifest names a file's contents.
func blake3Hex(data []byte) string {
	sum := blake3.Sum256(data)
	return hex.EncodeToString(sum[:])
}

// sameFiles fails unless dir holds exactly files.
func sameFiles(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != len(files) {
		t.Errorf("%s holds %d entries, want %d", dir, len(entries), len(files))
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Error(err)
			continue
		}
		if sha256Hex(got) != sha256Hex(want) {
			t.Errorf("%s differs from what was sent (%d bytes, want %d)", name, len(got), len(want))
		}
	}
}
