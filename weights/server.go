package weights

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
)

// Chunk sizes a client may ask for. Below 64 KiB the per-message overhead dominates; above
// 4 MiB a single retry after corruption costs too much and messages outgrow common limits.
const (
	MinChunkBytes     = 64 << 10
	MaxChunkBytes     = 4 << 20
	DefaultChunkBytes = 1 << 20
)

// castagnoli is the table of each chunk's crc32c. The sum only catches corruption in transit,
// early enough to resume at that chunk; the sender supplies both the data and the sum, so it
// proves nothing, and the file's BLAKE3 against the manifest is the real check. CRC-32C has
// instructions on x86-64 and arm64: far cheaper per byte than the sha256 it replaced.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// chunkCRC is the crc32c of a chunk's data.
func chunkCRC(data []byte) uint32 { return crc32.Checksum(data, castagnoli) }

// Server serves the versions of a Store over the tsdv1.Weights service. Each stream holds its
// version for as long as it runs, so Store.Keep cannot delete a version mid-transfer.
type Server struct {
	tsdv1.UnimplementedWeightsServer

	store   *Store
	streams atomic.Int64
	chunks  atomic.Int64
	bytes   atomic.Int64
}

var _ tsdv1.WeightsServer = (*Server)(nil)

// ServerStats counts what a Server has sent: the learner's weight egress is Bytes.
type ServerStats struct {
	Streams int64 // Fetch streams that passed validation and got a manifest
	Chunks  int64 // chunks sent
	Bytes   int64 // chunk data bytes sent
}

// NewServer returns a Server for store.
func NewServer(store *Store) *Server { return &Server{store: store} }

// Stats returns the counters so far; they only grow.
func (s *Server) Stats() ServerStats {
	return ServerStats{Streams: s.streams.Load(), Chunks: s.chunks.Load(), Bytes: s.bytes.Load()}
}

// Fetch streams the requested version: its manifest, then the chunks of every file from the
// resume point on, in manifest order. Empty files get no chunk.
func (s *Server) Fetch(req *tsdv1.FetchRequest, stream grpc.ServerStreamingServer[tsdv1.WeightMessage]) error {
	return statusOf(s.serve(req, stream))
}

func (s *Server) serve(req *tsdv1.FetchRequest, stream grpc.ServerStreamingServer[tsdv1.WeightMessage]) error {
	chunkBytes, err := requestChunkBytes(req.GetChunkBytes())
	if err != nil {
		return err
	}
	h, err := s.store.Acquire(req.GetVersion())
	if err != nil {
		return err
	}
	defer h.Release()
	first, offset, err := resumePoint(h.Manifest, req.GetResumeFile(), req.GetResumeOffset())
	if err != nil {
		return err
	}
	s.streams.Add(1)
	if err := stream.Send(&tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Manifest{Manifest: h.Manifest}}); err != nil {
		return err
	}
	for i := first; i < len(h.Manifest.GetFiles()); i++ {
		if err := s.sendFile(stream, h, i, offset, chunkBytes); err != nil {
			return err
		}
		offset = 0
	}
	return nil
}

// sendFile streams file i of h from offset on in chunks of chunkBytes, each with its crc32c.
func (s *Server) sendFile(stream grpc.ServerStreamingServer[tsdv1.WeightMessage], h *Handle, i int, offset int64, chunkBytes int) error {
	f := h.Manifest.GetFiles()[i]
	file, err := os.Open(filepath.Join(h.Dir, f.GetName()))
	if err != nil {
		return err
	}
	defer file.Close()
	for offset < f.GetSize() {
		if err := stream.Context().Err(); err != nil {
			return err
		}
		// The buffer goes back to sendBuffers once gRPC has written it (see chunkCodec.Marshal).
		buf := sendBuffers.Get(int(chunkLen(offset, f.GetSize(), chunkBytes)))
		data := *buf
		if _, err := file.ReadAt(data, offset); err != nil {
			sendBuffers.Put(buf)
			return fmt.Errorf("read %s at %d: %w", f.GetName(), offset, err)
		}
		chunk := &tsdv1.WeightChunk{File: f.GetName(), Offset: offset, Data: data, Crc32C: chunkCRC(data)}
		if err := stream.Send(&tsdv1.WeightMessage{Msg: &tsdv1.WeightMessage_Chunk{Chunk: chunk}}); err != nil {
			return err
		}
		s.chunks.Add(1)
		s.bytes.Add(int64(len(data)))
		offset += int64(len(data))
	}
	return nil
}

// chunkLen is the length of the chunk at offset in a file of size bytes: chunks end on multiples
// of chunkBytes, so a stream resumed inside a chunk first sends the rest of it and every stream
// cuts a file the same way, its reads aligned to the chunk size.
func chunkLen(offset, size int64, chunkBytes int) int64 {
	return min(int64(chunkBytes)-offset%int64(chunkBytes), size-offset)
}

// requestChunkBytes is the chunk size a request asks for, DefaultChunkBytes for 0.
func requestChunkBytes(n uint32) (int, error) {
	if n == 0 {
		return DefaultChunkBytes, nil
	}
	if n < MinChunkBytes || n > MaxChunkBytes {
		return 0, fmt.Errorf("%w: chunk_bytes %d outside [%d, %d]", ErrRequest, n, MinChunkBytes, MaxChunkBytes)
	}
	return int(n), nil
}

// resumePoint turns a request's resume file and offset into the index of the first file to send
// and the offset in it. An offset equal to the file's size is allowed and sends nothing of it.
func resumePoint(m *tsdv1.WeightManifest, file string, offset int64) (int, int64, error) {
	if file == "" {
		if offset != 0 {
			return 0, 0, fmt.Errorf("%w: resume_offset %d without resume_file", ErrRequest, offset)
		}
		return 0, 0, nil
	}
	for i, f := range m.GetFiles() {
		if f.GetName() != file {
			continue
		}
		if offset < 0 || offset > f.GetSize() {
			return 0, 0, fmt.Errorf("%w: resume_offset %d outside %q of %d bytes", ErrRequest, offset, file, f.GetSize())
		}
		return i, offset, nil
	}
	return 0, 0, fmt.Errorf("%w: resume_file %q is not in version %d", ErrRequest, file, m.GetVersion())
}

// statusOf maps the server's errors to gRPC status codes, in one place.
func statusOf(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrRequest):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	}
	if _, ok := status.FromError(err); ok {
		return err // from grpc itself, e.g. a failed Send
	}
	return status.Error(codes.Internal, err.Error())
}
