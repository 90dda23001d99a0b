package weights_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

// readStream collects a whole Fetch stream.
func readStream(t *testing.T, c tsdv1.WeightsClient, req *tsdv1.FetchRequest) (*tsdv1.WeightManifest, []*tsdv1.WeightChunk, error) {
	t.Helper()
	stream, err := c.Fetch(context.Background(), req)
	if err != nil {
		return nil, nil, err
	}
	var m *tsdv1.WeightManifest
	var chunks []*tsdv1.WeightChunk
	for {
		msg, err := stream.Recv()
		if err == io.EOF {
			return m, chunks, nil
		}
		if err != nil {
			return m, chunks, err
		}
		if msg.GetManifest() != nil {
			m = msg.GetManifest()
		} else {
			chunks = append(chunks, msg.GetChunk())
		}
	}
}

func TestServerStream(t *testing.T) {
	files := randomFiles(10, 300<<10)
	s, want := storeWith(t, 4, files)
	srv := weights.NewServer(s)
	c := serve(t, srv)
	tests := []struct {
		name       string
		req        *tsdv1.FetchRequest
		first      string // file of the first chunk
		firstOff   int64
		maxChunk   int
		chunkCount int
	}{
		{"whole, default chunks", &tsdv1.FetchRequest{Version: 4}, "config.json", 0, weights.DefaultChunkBytes, 4},
		{"whole, 64 KiB chunks", &tsdv1.FetchRequest{Version: 4, ChunkBytes: 64 << 10}, "config.json", 0, 64 << 10, 3 + 5},
		{"resume mid-file", &tsdv1.FetchRequest{Version: 4, ResumeFile: "model.safetensors", ResumeOffset: 100 << 10, ChunkBytes: 64 << 10}, "model.safetensors", 100 << 10, 64 << 10, 4 + 1},
		{"resume at end of file", &tsdv1.FetchRequest{Version: 4, ResumeFile: "model.safetensors", ResumeOffset: 300 << 10}, "tokenizer.json", 0, weights.DefaultChunkBytes, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, chunks, err := readStream(t, c, tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if m.GetSha256() != want.GetSha256() {
				t.Errorf("manifest %s, want %s", m.GetSha256(), want.GetSha256())
			}
			if len(chunks) != tt.chunkCount {
				t.Errorf("%d chunks, want %d", len(chunks), tt.chunkCount)
			}
			if len(chunks) > 0 && (chunks[0].File != tt.first || chunks[0].Offset != tt.firstOff) {
				t.Errorf("first chunk %s@%d, want %s@%d", chunks[0].File, chunks[0].Offset, tt.first, tt.firstOff)
			}
			for _, ch := range chunks {
				if len(ch.Data) == 0 || len(ch.Data) > tt.maxChunk || crc32c(ch.Data) != ch.Crc32C {
					t.Errorf("chunk %s@%d: %d bytes, crc32c ok %v", ch.File, ch.Offset, len(ch.Data), crc32c(ch.Data) == ch.Crc32C)
				}
				if ch.File == "empty.txt" {
					t.Error("a chunk for an empty file")
				}
				if got := files[ch.File][ch.Offset : ch.Offset+int64(len(ch.Data))]; !bytes.Equal(got, ch.Data) {
					t.Errorf("chunk %s@%d is not the file's bytes", ch.File, ch.Offset)
				}
			}
		})
	}
	if st := srv.Stats(); st.Streams != int64(len(tests)) || st.Bytes == 0 {
		t.Errorf("stats %+v", st)
	}
}

// TestServerChunkGrid checks that chunks end on multiples of the chunk size, so a stream resumed
// inside a chunk first sends the rest of that chunk.
func TestServerChunkGrid(t *testing.T) {
	files := randomFiles(32, 3<<20+5)
	s, _ := storeWith(t, 1, files)
	c := serve(t, weights.NewServer(s))
	for _, chunk := range []int64{weights.DefaultChunkBytes, 64 << 10} {
		req := &tsdv1.FetchRequest{Version: 1, ResumeFile: "model.safetensors", ResumeOffset: 100_000, ChunkBytes: uint32(chunk)}
		_, chunks, err := readStream(t, c, req)
		if err != nil {
			t.Fatal(err)
		}
		if len(chunks) == 0 || chunks[0].Offset != 100_000 || int64(len(chunks[0].Data)) != chunk-100_000%chunk {
			t.Fatalf("chunk size %d: first chunk %d bytes, want the %d to the next multiple", chunk, len(chunks[0].Data), chunk-100_000%chunk)
		}
		for _, ch := range chunks {
			end := ch.Offset + int64(len(ch.Data))
			if end%chunk != 0 && end != int64(len(files[ch.File])) {
				t.Errorf("chunk size %d: %s chunk ends at %d, off the grid", chunk, ch.File, end)
			}
		}
	}
}

func TestServerErrors(t *testing.T) {
	s, _ := storeWith(t, 4, randomFiles(11, 1000))
	srv := weights.NewServer(s)
	c := serve(t, srv)
	tests := []struct {
		name string
		req  *tsdv1.FetchRequest
		code codes.Code
	}{
		{"unknown version", &tsdv1.FetchRequest{Version: 5}, codes.NotFound},
		{"unknown resume file", &tsdv1.FetchRequest{Version: 4, ResumeFile: "x.bin"}, codes.InvalidArgument},
		{"negative offset", &tsdv1.FetchRequest{Version: 4, ResumeFile: "model.safetensors", ResumeOffset: -1}, codes.InvalidArgument},
		{"offset past the end", &tsdv1.FetchRequest{Version: 4, ResumeFile: "model.safetensors", ResumeOffset: 1001}, codes.InvalidArgument},
		{"offset without file", &tsdv1.FetchRequest{Version: 4, ResumeOffset: 10}, codes.InvalidArgument},
		{"chunk too small", &tsdv1.FetchRequest{Version: 4, ChunkBytes: 1024}, codes.InvalidArgument},
		{"chunk too large", &tsdv1.FetchRequest{Version: 4, ChunkBytes: 5 << 20}, codes.InvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := readStream(t, c, tt.req)
			if status.Code(err) != tt.code {
				t.Errorf("error %v, want code %v", err, tt.code)
			}
		})
	}
	if st := srv.Stats(); st.Streams != 0 || st.Bytes != 0 {
		t.Errorf("refused requests were counted: %+v", st)
	}
}

// TestServerCancel ends a stream the client abandons and releases its version.
func TestServerCancel(t *testing.T) {
	s, _ := storeWith(t, 1, randomFiles(12, 8<<20))
	done := make(chan struct{}, 1)
	c := serve(t, &hookServer{inner: weights.NewServer(s), done: done})
	ctx, cancel := context.WithCancel(context.Background())
	stream, err := c.Fetch(ctx, &tsdv1.FetchRequest{Version: 1, ChunkBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if removed, _ := s.Keep(0); len(removed) != 0 {
		t.Fatalf("Keep deleted %v while it was being served", removed)
	}
	cancel()
	<-done // the handler returned
	if removed, err := s.Keep(0); err != nil || len(removed) != 1 {
		t.Errorf("Keep after the stream ended: %v %v", removed, err)
	}
}

// TestCheckMessageLimit: a message limit (--max-msg-bytes) under which a server could not send a
// full weight chunk is refused; 0 (the rpc default, 64 MiB) and anything from MaxMessageBytes up
// are fine.
func TestCheckMessageLimit(t *testing.T) {
	for limit, ok := range map[int]bool{0: true, weights.MaxMessageBytes: true, 64 << 20: true, weights.MaxMessageBytes - 1: false, 1 << 20: false} {
		if err := weights.CheckMessageLimit(limit); (err == nil) != ok || (err != nil && !errors.Is(err, weights.ErrArgument)) {
			t.Errorf("limit %d: %v, want ok=%v", limit, err, ok)
		}
	}
}
