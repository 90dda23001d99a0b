package weights

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
)

// Source is one place a version can be fetched from: a peer actor or the learner.
type Source struct {
	Name   string // its address, for errors and progress
	Client tsdv1.WeightsClient
}

// FetchOptions tune Fetch. The zero value is usable: each zero field takes the default named in
// its comment.
type FetchOptions struct {
	// ChunkBytes is the chunk size to ask for, within [MinChunkBytes, MaxChunkBytes]; 0 leaves
	// it to the source (DefaultChunkBytes for a Server).
	ChunkBytes int
	// MaxRetries is how many failed streams in a row, with no verified byte in between, a source
	// may have before Fetch gives up on it (default 5). Failures that cannot heal by retrying
	// (the source lacks the version, its manifest or a whole file has the wrong digest) end the
	// source at once.
	MaxRetries int
	// RetryBackoff is the pause before the first retry of a source; it doubles per retry up to
	// maxRetryBackoff (default 100ms).
	RetryBackoff time.Duration
	// StallTimeout ends a stream, to be retried, when Fetch has waited this long for its next
	// message (default 30s). Time spent writing and syncing files does not count.
	StallTimeout time.Duration
	// SwitchAfter replaces StallTimeout for every source but the last: a peer that sends nothing
	// for this long is left for the next source (the last is the learner), whose stream resumes
	// at the first byte not yet verified (default 5s). A stalled peer would otherwise hold a
	// fresh actor for MaxRetries × StallTimeout.
	SwitchAfter time.Duration
	// MaxBytes is the largest checkpoint accepted, summed over its files: a manifest claiming
	// more is refused before anything is written. Set it to the size the coordinator recorded
	// (default 64 GiB).
	MaxBytes int64
	// MaxFiles is the most files a checkpoint may have (default 1024).
	MaxFiles int
	// Progress, if set, is called after each verified chunk, from Fetch's goroutine.
	Progress func(Progress)
	// OnError, if set, is called with every failed stream before Fetch retries the source or
	// moves on; use it to log or count retries.
	OnError func(source string, err error)
}

// Progress reports how much of a version has been received and verified.
type Progress struct {
	Version uint64
	Source  string
	Bytes   int64 // verified bytes so far, all files
	Total   int64 // sum of the file sizes
}

const (
	defaultMaxRetries   = 5
	defaultRetryBackoff = 100 * time.Millisecond
	maxRetryBackoff     = 5 * time.Second
	defaultStallTimeout = 30 * time.Second
	defaultSwitchAfter  = 5 * time.Second
	defaultMaxBytes     = 64 << 30
	defaultMaxFiles     = 1024
	// writebackBytes is how much of a file Fetch writes before it asks the kernel to start
	// writing those bytes to disk. Left alone, the dirty pages of a multi-gigabyte file pile up
	// in memory and the fsync at its end writes most of them while the stream waits; started as
	// they come, the disk works during the transfer.
	writebackBytes = 8 << 20
)

// withDefaults fills zero fields and rejects out-of-range ones.
func (o FetchOptions) withDefaults() (FetchOptions, error) {
	if o.ChunkBytes != 0 && (o.ChunkBytes < MinChunkBytes || o.ChunkBytes > MaxChunkBytes) {
		return o, fmt.Errorf("%w: ChunkBytes %d outside [%d, %d]", ErrArgument, o.ChunkBytes, MinChunkBytes, MaxChunkBytes)
	}
	if o.MaxRetries < 0 || o.RetryBackoff < 0 || o.StallTimeout < 0 || o.SwitchAfter < 0 || o.MaxBytes < 0 || o.MaxFiles < 0 {
		return o, fmt.Errorf("%w: negative limit in %+v", ErrArgument, o)
	}
	o.MaxRetries = cmp.Or(o.MaxRetries, defaultMaxRetries)
	o.RetryBackoff = cmp.Or(o.RetryBackoff, defaultRetryBackoff)
	o.StallTimeout = cmp.Or(o.StallTimeout, defaultStallTimeout)
	o.SwitchAfter = cmp.Or(o.SwitchAfter, defaultSwitchAfter)
	o.MaxBytes = cmp.Or(o.MaxBytes, defaultMaxBytes)
	o.MaxFiles = cmp.Or(o.MaxFiles, defaultMaxFiles)
	return o, nil
}

// Fetch makes version, whose checkpoint digest the coordinator recorded as wantSHA, present in
// store, trying sources in order. Every chunk is checked against its CRC-32C as it arrives,
// every file against the manifest's BLAKE3 when it ends, and the manifest against wantSHA before
// anything is written; the version becomes visible in the store only when all of it is verified
// and synced.
// A broken stream resumes at the first byte not yet verified, from the same source until it fails
// MaxRetries times in a row, then from the next. A source that sends corrupt bytes, or nothing
// for SwitchAfter, is left for the next at once (the last source is retried like a broken
// stream: with no other, transit corruption and a slow link are worth retrying). If the store
// already holds the version it is returned at once; if another Fetch of it into the same store
// is under way, this one waits for it rather than downloading it twice.
func Fetch(ctx context.Context, sources []Source, version uint64, wantSHA string, store *Store, opts FetchOptions) (*tsdv1.WeightManifest, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := checkFetchArgs(sources, wantSHA, store); err != nil {
		return nil, err
	}
	imp, existing, err := store.beginImport(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("weights: fetch version %d: %w", version, err)
	}
	if existing != nil {
		if existing.GetSha256() != wantSHA {
			return nil, fmt.Errorf("%w: version %d is %s, want %s", ErrConflict, version, existing.GetSha256(), wantSHA)
		}
		return proto.CloneOf(existing), nil
	}
	defer imp.abort()
	f := &fetch{opts: opts, version: version, wantSHA: wantSHA, imp: imp, codec: newFetchCodec()}
	defer f.closeFile()
	var errs []error
	for i, src := range sources {
		err := f.fromSource(ctx, src, i == len(sources)-1)
		if err == nil {
			m, err := imp.commit(f.manifest)
			if err != nil {
				return nil, err
			}
			return proto.CloneOf(m), nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("weights: fetch version %d from %s: %w", version, src.Name, ctx.Err())
		}
		if errors.As(err, new(localError)) {
			return nil, fmt.Errorf("weights: fetch version %d from %s: %w", version, src.Name, err)
		}
		errs = append(errs, fmt.Errorf("%s: %w", src.Name, err))
	}
	return nil, fmt.Errorf("%w: version %d: %w", ErrSources, version, errors.Join(errs...))
}

func checkFetchArgs(sources []Source, wantSHA string, store *Store) error {
	if len(sources) == 0 {
		return fmt.Errorf("%w: no sources", ErrArgument)
	}
	for i, s := range sources {
		if s.Client == nil {
			return fmt.Errorf("%w: source %d (%q) has no client", ErrArgument, i, s.Name)
		}
	}
	if !isHexDigest(wantSHA) {
		return fmt.Errorf("%w: want sha256 %q is not 64 lowercase hex digits", ErrArgument, wantSHA)
	}
	if store == nil {
		return fmt.Errorf("%w: no store", ErrArgument)
	}
	return nil
}

// localError marks a failure on this side (the disk): no other source would help.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// fetch is the state of one Fetch: what has been verified so far, which survives from stream
// to stream and from source to source.
type fetch struct {
	opts     FetchOptions
	version  uint64
	wantSHA  string
	imp      *importSlot
	manifest *tsdv1.WeightManifest // nil until the first source sent a good one
	total    int64                 // sum of the file sizes
	done     int64                 // verified bytes, all files
	idx      int                   // file being received
	off      int64                 // verified bytes of that file
	out      *os.File              // that file, open
	hash     *fileHash             // hashing its first off bytes
	codec    *chunkCodec           // decodes chunks into buffers that the file hash recycles
	source   string                // the source streaming now
}

// fromSource streams from src until the version is complete or src has failed for good; last
// says whether src is the last source.
func (f *fetch) fromSource(ctx context.Context, src Source, last bool) error {
	f.source = src.Name
	backoff := f.opts.RetryBackoff
	stall := f.opts.StallTimeout
	if !last {
		stall = min(stall, f.opts.SwitchAfter)
	}
	for failures := 0; ; {
		before := f.done
		err := f.stream(ctx, src, stall)
		if !last && (errors.Is(err, ErrCorruptChunk) || errors.Is(err, ErrStalled)) {
			if f.opts.OnError != nil {
				f.opts.OnError(src.Name, err)
			}
			return err
		}
		if err == nil || ctx.Err() != nil {
			return err
		}
		if f.opts.OnError != nil {
			f.opts.OnError(src.Name, err)
		}
		if f.done > before {
			failures, backoff = 0, f.opts.RetryBackoff
		}
		if failures++; failures > f.opts.MaxRetries || !retryable(err) {
			return err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, maxRetryBackoff)
	}
}

// retryable reports whether trying the same source again may help: not when it lacks the
// version, refuses the request, or sent a manifest or file with the wrong digest.
func retryable(err error) bool {
	if errors.Is(err, ErrManifest) || errors.Is(err, ErrDigest) || errors.Is(err, ErrNotFound) ||
		errors.Is(err, ErrRequest) || errors.As(err, new(localError)) {
		return false
	}
	switch status.Code(err) {
	case codes.NotFound, codes.InvalidArgument, codes.Unimplemented, codes.PermissionDenied,
		codes.Unauthenticated, codes.FailedPrecondition, codes.ResourceExhausted, codes.OutOfRange:
		return false
	}
	return true
}

// stream runs one Fetch stream from src, ending it if the source stalls. The stall clock runs
// only while waiting for the source: syncing a multi-gigabyte file at its end can take longer
// than StallTimeout on a slow disk, and that is not the source's fault.
func (f *fetch) stream(ctx context.Context, src Source, stall time.Duration) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stalled atomic.Bool
	timer := time.AfterFunc(stall, func() { stalled.Store(true); cancel() })
	defer timer.Stop()
	recv := func(stream grpc.ServerStreamingClient[tsdv1.WeightMessage]) (*tsdv1.WeightMessage, error) {
		timer.Reset(stall)
		defer timer.Stop()
		return stream.Recv()
	}
	err := f.receive(sctx, src, recv)
	if err != nil && stalled.Load() && ctx.Err() == nil {
		return fmt.Errorf("%w: nothing for %v at %s: %w", ErrStalled, stall, f.position(), err)
	}
	return err
}

// receive reads one stream with recv: the manifest, then chunks until the version is complete.
func (f *fetch) receive(ctx context.Context, src Source, recv func(grpc.ServerStreamingClient[tsdv1.WeightMessage]) (*tsdv1.WeightMessage, error)) error {
	stream, err := src.Client.Fetch(ctx, f.request(), grpc.ForceCodecV2(f.codec))
	if err != nil {
		return fromStatus(err)
	}
	msg, err := recv(stream)
	if err != nil {
		return fromStatus(err)
	}
	if err := f.acceptManifest(msg.GetManifest()); err != nil {
		return err
	}
	for !f.complete() {
		msg, err := recv(stream)
		if err == io.EOF {
			return fmt.Errorf("%w: stream ended at %s", ErrProtocol, f.position())
		}
		if err != nil {
			return fromStatus(err)
		}
		if err := f.acceptChunk(msg.GetChunk()); err != nil {
			return err
		}
	}
	recv(stream) // lets the server finish the stream instead of seeing it cancelled
	return nil
}

// request asks for the version from the first byte not yet verified.
func (f *fetch) request() *tsdv1.FetchRequest {
	req := &tsdv1.FetchRequest{Version: f.version, ChunkBytes: uint32(f.opts.ChunkBytes)}
	if f.manifest != nil && (f.idx > 0 || f.off > 0) {
		req.ResumeFile = f.manifest.Files[f.idx].GetName()
		req.ResumeOffset = f.off
	}
	return req
}

// fromStatus adds this package's sentinel to the gRPC errors that have one.
func fromStatus(err error) error {
	switch status.Code(err) {
	case codes.NotFound:
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	case codes.InvalidArgument:
		return fmt.Errorf("%w: %w", ErrRequest, err)
	}
	return err
}

// acceptManifest checks the manifest that opens a stream. The first one must validate, name
// the version and match wantSHA and the limits; later ones (resumed streams, other sources)
// must have the same digest, which pins their file list to the first.
func (f *fetch) acceptManifest(m *tsdv1.WeightManifest) error {
	if m == nil {
		return fmt.Errorf("%w: the stream did not start with a manifest", ErrProtocol)
	}
	if m.GetVersion() != f.version {
		return fmt.Errorf("%w: asked for version %d, got %d", ErrManifest, f.version, m.GetVersion())
	}
	if f.manifest != nil {
		if m.GetSha256() != f.manifest.GetSha256() {
			return fmt.Errorf("%w: version %d is now %s, was %s", ErrDigest, f.version, m.GetSha256(), f.manifest.GetSha256())
		}
		return nil
	}
	if err := ValidateManifest(m); err != nil {
		return err
	}
	if m.GetSha256() != f.wantSHA {
		return fmt.Errorf("%w: version %d is %s, want %s", ErrDigest, f.version, m.GetSha256(), f.wantSHA)
	}
	if err := f.checkLimits(m); err != nil {
		return err
	}
	f.manifest = m
	return f.advance()
}

// checkLimits refuses a manifest too large to be what the coordinator recorded.
func (f *fetch) checkLimits(m *tsdv1.WeightManifest) error {
	if len(m.Files) > f.opts.MaxFiles {
		return fmt.Errorf("%w: %d files, at most %d", ErrManifest, len(m.Files), f.opts.MaxFiles)
	}
	var total int64
	for _, file := range m.Files {
		if file.Size > f.opts.MaxBytes-total { // no overflow: both sides stay in [0, MaxBytes]
			return fmt.Errorf("%w: more than %d bytes", ErrManifest, f.opts.MaxBytes)
		}
		total += file.Size
	}
	f.total = total
	return nil
}

// complete reports whether every file has been received and verified.
func (f *fetch) complete() bool { return f.manifest != nil && f.idx == len(f.manifest.Files) }

// position describes where the fetch stands, for errors.
func (f *fetch) position() string {
	if f.manifest == nil || f.complete() {
		return fmt.Sprintf("version %d from %s", f.version, f.source)
	}
	return fmt.Sprintf("version %d %s offset %d from %s", f.version, f.manifest.Files[f.idx].GetName(), f.off, f.source)
}

// acceptChunk checks a chunk against what comes next and its own CRC-32C, then writes it. The CRC
// only catches corruption in transit, early enough to resume at this chunk; the file's BLAKE3
// (on the fileHash goroutine) is what proves the bytes.
func (f *fetch) acceptChunk(c *tsdv1.WeightChunk) error {
	if c == nil {
		return fmt.Errorf("%w: a second manifest at %s", ErrProtocol, f.position())
	}
	file := f.manifest.Files[f.idx]
	if c.GetFile() != file.GetName() || c.GetOffset() != f.off {
		return fmt.Errorf("%w: got %q offset %d, expected %s", ErrProtocol, c.GetFile(), c.GetOffset(), f.position())
	}
	n := int64(len(c.GetData()))
	if n == 0 || n > file.GetSize()-f.off {
		return fmt.Errorf("%w: chunk of %d bytes at %s of %d bytes", ErrProtocol, n, f.position(), file.GetSize())
	}
	if chunkCRC(c.GetData()) != c.GetCrc32C() {
		return fmt.Errorf("%w: at %s", ErrCorruptChunk, f.position())
	}
	if _, err := f.out.WriteAt(c.GetData(), f.off); err != nil {
		return localError{err}
	}
	f.hash.write(c.GetData())
	f.off += n
	f.done += n
	// Passing a multiple of writebackBytes starts the writeback of the block before it (a chunk,
	// at most MaxChunkBytes, never passes two).
	if k := f.off / writebackBytes; k > (f.off-n)/writebackBytes {
		startWriteback(f.out, (k-1)*writebackBytes, writebackBytes)
	}
	if f.opts.Progress != nil {
		f.opts.Progress(Progress{Version: f.version, Source: f.source, Bytes: f.done, Total: f.total})
	}
	return f.advance()
}

// advance opens the file being received and finishes every file whose bytes are all there
// (including empty files, which get no chunk).
func (f *fetch) advance() error {
	for !f.complete() {
		file := f.manifest.Files[f.idx]
		if f.out == nil {
			out, err := f.imp.createIn(file.GetName())
			if err != nil {
				return localError{err}
			}
			f.out, f.hash, f.off = out, newFileHash(f.codec.recycle), 0
		}
		if f.off < file.GetSize() {
			return nil
		}
		if err := f.finishFile(file); err != nil {
			return err
		}
		f.idx++
	}
	return nil
}

// finishFile checks a fully received file against the manifest and syncs it. On a mismatch the
// file starts over, and the error ends the source that sent it: its chunks agreed with their
// own CRC-32C, so it holds (or forged) the wrong bytes and retrying it would only repeat them.
func (f *fetch) finishFile(file *tsdv1.WeightFile) error {
	got := f.hash.finish()
	f.hash = nil
	if got != file.GetBlake3() {
		f.done -= f.off
		f.off = 0
		f.hash = newFileHash(f.codec.recycle)
		if err := f.out.Truncate(0); err != nil {
			return localError{err}
		}
		return fmt.Errorf("%w: %s from %s has blake3 %s, manifest says %s", ErrDigest, file.GetName(), f.source, got, file.GetBlake3())
	}
	err := f.out.Sync()
	if cerr := f.out.Close(); err == nil {
		err = cerr
	}
	f.out = nil
	if err != nil {
		return localError{err}
	}
	return nil
}

// closeFile closes the file being received, if any, when Fetch returns.
func (f *fetch) closeFile() {
	if f.out != nil {
		f.out.Close()
	}
	if f.hash != nil {
		f.hash.stop()
	}
}
