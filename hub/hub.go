// Package hub turns a model reference into a local model directory. A reference is either a
// directory (returned as is) or a Hugging Face model id org/name[@revision]; an id resolves to a
// snapshot in the Hugging Face cache, downloading what is missing first. The cache layout is the
// one huggingface_hub uses, so models fetched by Python are found here and the other way round:
//
//	<cache>/models--<org>--<name>/refs/<revision>          the commit hash the revision pointed to
//	<cache>/models--<org>--<name>/blobs/<etag>             file contents, named by the hub's etag
//	<cache>/models--<org>--<name>/snapshots/<commit>/<file> relative symlink to ../../blobs/<etag>
//	<cache>/.locks/models--<org>--<name>/<etag>.lock       flock held while a blob downloads
//
// A complete snapshot is used without touching the network.
package hub

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Errors returned by Resolve, wrapped with the model, file or status they concern; test with
// errors.Is.
var (
	// ErrRef means the reference is neither an existing directory nor a model id
	// org/name[@revision].
	ErrRef = errors.New("hub: bad model reference")
	// ErrConfig means an option or its environment variable (HF_ENDPOINT, the cache root) is
	// unusable.
	ErrConfig = errors.New("hub: bad configuration")
	// ErrOffline means offline mode is on and the cache lacks a file the model needs.
	ErrOffline = errors.New("hub: offline and the model is not fully cached")
	// ErrUnauthorized means the hub refused access (401/403): no HF_TOKEN, a wrong one, or one
	// without access to a private or gated model. The hub also answers 401 for a missing
	// repository when no token is sent.
	ErrUnauthorized = errors.New("hub: access denied")
	// ErrNotFound means the hub has no such repository, revision or file (404).
	ErrNotFound = errors.New("hub: not found")
	// ErrUnavailable means the hub kept failing (network errors, 5xx, stalls) through every retry.
	ErrUnavailable = errors.New("hub: unavailable")
	// ErrCorrupt means downloaded bytes disagree with the size or sha256 the hub announced; the
	// partial file is deleted so the next try starts afresh.
	ErrCorrupt = errors.New("hub: corrupt download")
	// ErrProtocol means a response the hub does not send: a missing or unsafe commit, etag or
	// shard name, a wrong Content-Range, an unexpected status.
	ErrProtocol = errors.New("hub: unexpected response")
)

const (
	defaultEndpoint     = "https://huggingface.co"
	defaultRevision     = "main"
	defaultRetries      = 5
	defaultRetryDelay   = time.Second
	defaultStallTimeout = 60 * time.Second
	maxRedirects        = 10
	lockPollInterval    = 50 * time.Millisecond
	maxRepoIDLen        = 96 // huggingface_hub's limit for org/name
	indexFile           = "model.safetensors.index.json"
	copyBufferBytes     = 256 << 10
)

// The files a model directory needs, in download order. Optional ones may 404.
var (
	requiredFiles = []string{"config.json", "tokenizer.json"}
	optionalFiles = []string{"generation_config.json", "tokenizer_config.json"}
)

var (
	// repoPartRe is one half of org/name; "--" and ".." are refused separately, as the hub does.
	repoPartRe = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$`)
	// revPartRe is one /-separated part of a branch or tag name (refs/pr/1 has three).
	revPartRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	// fileRe is a file name inside a snapshot: no directories, no leading dot.
	fileRe   = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]*$`)
	commitRe = regexp.MustCompile(`^[0-9a-f]{40}$`)
	sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)
	// etagRe keeps blob names to what the hub sends (hex git or sha256 ids): safe as a path part.
	etagRe = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)
)

// Resolve returns a directory holding config.json, tokenizer.json and the weights
// (model.safetensors, or model.safetensors.index.json and its shards) for ref. An existing
// directory is returned unchanged (so a folder named like a model id wins, as in transformers).
// Otherwise ref is org/name[@revision], revision defaulting to main and possibly a commit hash;
// a complete cached snapshot is returned without network access, else missing files are
// downloaded from opts.Endpoint into the cache, resuming partial files, and the snapshot returned.
func Resolve(ctx context.Context, ref string, opts Options) (string, error) {
	if st, err := os.Stat(ref); err == nil {
		if !st.IsDir() {
			return "", fmt.Errorf("%w: %q is a file, want a model directory or org/name[@revision]", ErrRef, ref)
		}
		return ref, nil
	}
	if filepath.IsAbs(ref) || strings.HasPrefix(ref, ".") || strings.HasPrefix(ref, "~") {
		return "", fmt.Errorf("%w: no such directory: %q", ErrRef, ref)
	}
	r, err := parseRef(ref)
	if err != nil {
		return "", err
	}
	o, err := opts.withEnv()
	if err != nil {
		return "", err
	}
	repo := filepath.Join(o.CacheDir, r.folder())
	dir, missing := cachedSnapshot(repo, r.revision)
	if missing == nil {
		return dir, nil
	}
	if o.Offline {
		return "", fmt.Errorf("%w: %s in %s: %v (offline because of HF_HUB_OFFLINE or Options.Offline)", ErrOffline, r, o.CacheDir, missing)
	}
	f, err := newFetcher(o, r)
	if err != nil {
		return "", err
	}
	defer f.close()
	return f.run(ctx)
}

// ref is a validated model id.
type ref struct{ org, name, revision string }

func (r ref) String() string { return r.org + "/" + r.name + "@" + r.revision }

// folder is the repository's folder in the cache, as huggingface_hub names it.
func (r ref) folder() string { return "models--" + r.org + "--" + r.name }

// parseRef validates org/name[@revision] strictly: every part ends up in a path or a URL.
func parseRef(s string) (ref, error) {
	bad := func(why string) (ref, error) {
		return ref{}, fmt.Errorf("%w: %q: %s (want a directory or org/name[@revision])", ErrRef, s, why)
	}
	id, rev, hasRev := strings.Cut(s, "@")
	if !hasRev {
		rev = defaultRevision
	}
	org, name, ok := strings.Cut(id, "/")
	switch {
	case !ok:
		return bad("not a directory, and a model id needs an org/ prefix")
	case len(id) > maxRepoIDLen:
		return bad(fmt.Sprintf("model id longer than %d characters", maxRepoIDLen))
	case strings.Contains(name, "/"):
		return bad("a model id has exactly one /")
	}
	for _, part := range []string{org, name} {
		if !repoPartRe.MatchString(part) || strings.Contains(part, "--") || strings.Contains(part, "..") {
			return bad(fmt.Sprintf("%q is not a valid org or model name (letters, digits, - _ . inside)", part))
		}
	}
	if rev == "" {
		return bad("empty revision after @")
	}
	for part := range strings.SplitSeq(rev, "/") {
		if !revPartRe.MatchString(part) || strings.Contains(part, "..") || strings.HasSuffix(part, ".lock") {
			return bad(fmt.Sprintf("invalid revision %q", rev))
		}
	}
	return ref{org: org, name: name, revision: rev}, nil
}

// fetcher downloads one repository's files into its cache folder.
type fetcher struct {
	opts   Options
	ref    ref
	repo   string   // <cache>/models--org--name
	locks  string   // <cache>/.locks/models--org--name
	hub    *url.URL // the only host that sees the token
	commit string   // pinned by the first response, so every file comes from one commit
	// metaClient stops before a redirect to another host: the hub's own answer carries the metadata.
	metaClient *http.Client
	// getClient follows redirects (LFS files live on a CDN) and drops the token when leaving the hub.
	getClient *http.Client
	bar       *progress
}

func newFetcher(o Options, r ref) (*fetcher, error) {
	hub, err := url.Parse(strings.TrimRight(o.Endpoint, "/"))
	if err != nil || (hub.Scheme != "http" && hub.Scheme != "https") || hub.Host == "" {
		return nil, fmt.Errorf("%w: endpoint %q is not an http(s) URL (HF_ENDPOINT)", ErrConfig, o.Endpoint)
	}
	f := &fetcher{
		opts:  o,
		ref:   r,
		repo:  filepath.Join(o.CacheDir, r.folder()),
		locks: filepath.Join(o.CacheDir, ".locks", r.folder()),
		hub:   hub,
		bar:   newProgress(o.Progress, time.Now),
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = o.StallTimeout
	f.metaClient = &http.Client{Transport: tr, CheckRedirect: f.stayOnHub}
	f.getClient = &http.Client{Transport: tr, CheckRedirect: f.dropTokenOffHub}
	return f, nil
}

func (f *fetcher) close() { f.getClient.Transport.(*http.Transport).CloseIdleConnections() }

func (f *fetcher) onHub(u *url.URL) bool { return u.Scheme == f.hub.Scheme && u.Host == f.hub.Host }

func (f *fetcher) stayOnHub(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects || !f.onHub(req.URL) {
		return http.ErrUseLastResponse
	}
	return nil
}

// dropTokenOffHub compares host and port, stricter than net/http, which keeps the header for
// another port of the same host name.
func (f *fetcher) dropTokenOffHub(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRedirects {
		return fmt.Errorf("%w: more than %d redirects", ErrProtocol, maxRedirects)
	}
	if !f.onHub(req.URL) {
		req.Header.Del("Authorization")
	}
	return nil
}

func (f *fetcher) run(ctx context.Context) (string, error) {
	for _, name := range requiredFiles {
		if err := f.file(ctx, name); err != nil {
			return "", err
		}
	}
	for _, name := range optionalFiles {
		if err := f.file(ctx, name); err != nil && !errors.Is(err, ErrNotFound) {
			return "", err
		}
	}
	if err := f.weights(ctx); err != nil {
		return "", err
	}
	dir := f.snapshot()
	if err := checkModel(dir); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrProtocol, f.ref, err)
	}
	if f.ref.revision != f.commit {
		refFile := filepath.Join(f.repo, "refs", filepath.FromSlash(f.ref.revision))
		if err := writeAtomic(refFile, []byte(f.commit)); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// weights fetches model.safetensors or, when the model is sharded, the index and its shards.
func (f *fetcher) weights(ctx context.Context) error {
	err := f.file(ctx, "model.safetensors")
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	if err := f.file(ctx, indexFile); errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: %s: neither model.safetensors nor %s", ErrNotFound, f.ref, indexFile)
	} else if err != nil {
		return err
	}
	shards, err := readShards(filepath.Join(f.snapshot(), indexFile))
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrProtocol, f.ref, err)
	}
	for _, s := range shards {
		if err := f.file(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (f *fetcher) snapshot() string { return filepath.Join(f.repo, "snapshots", f.commit) }

func (f *fetcher) where(name string) string { return f.ref.String() + ": " + name }

// file makes snapshots/<commit>/name point at its blob, downloading the blob when absent.
func (f *fetcher) file(ctx context.Context, name string) error {
	m, err := f.head(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) && f.commit != "" {
			// huggingface_hub's record of a file the commit lacks; it saves it a request offline.
			_ = writeAtomic(filepath.Join(f.repo, ".no_exist", f.commit, name), nil)
		}
		return err
	}
	if f.commit == "" {
		f.commit = m.commit
	} else if m.commit != f.commit {
		return fmt.Errorf("%w: %s: commit %s, earlier files came from %s", ErrProtocol, f.where(name), m.commit, f.commit)
	}
	dst := filepath.Join(f.snapshot(), name)
	if isFile(dst) {
		return nil
	}
	blob := filepath.Join(f.repo, "blobs", m.etag)
	if !isFile(blob) {
		if err := f.download(ctx, name, m, blob); err != nil {
			return err
		}
	}
	return link(dst, blob)
}

// meta is what the hub says about one file before it is downloaded.
type meta struct {
	commit string
	etag   string // the blob name: sha256 for LFS files, the git blob id for others
	size   int64  // -1 when not announced
}

// head asks the hub for a file's commit, etag and size (huggingface_hub does the same).
func (f *fetcher) head(ctx context.Context, name string) (meta, error) {
	var m meta
	err := f.retry(ctx, func() error {
		resp, err := f.metaClient.Do(f.request(ctx, http.MethodHead, name))
		if err != nil {
			return netError(ctx, fmt.Errorf("%s: %w", f.where(name), err))
		}
		resp.Body.Close()
		if resp.StatusCode >= http.StatusBadRequest {
			return f.statusError(resp, name)
		}
		m, err = parseMeta(resp)
		if err != nil {
			return fmt.Errorf("%w: %s: %v", ErrProtocol, f.where(name), err)
		}
		return nil
	})
	return m, err
}

// request builds a resolve request for name on the hub; the revision is the pinned commit once
// known. Identity encoding keeps Content-Length the file's size.
func (f *fetcher) request(ctx context.Context, method, name string) *http.Request {
	rev := cmp.Or(f.commit, f.ref.revision)
	u := *f.hub
	u.Path += "/" + f.ref.org + "/" + f.ref.name + "/resolve/" + rev + "/" + name
	u.RawPath = f.hub.EscapedPath() + "/" + f.ref.org + "/" + f.ref.name + "/resolve/" + url.PathEscape(rev) + "/" + name
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		panic(fmt.Sprintf("hub: request from validated parts: %v", err)) // names are validated
	}
	req.Header.Set("Accept-Encoding", "identity")
	req.Header.Set("User-Agent", "tsd-hub/1")
	if f.opts.Token != "" {
		req.Header.Set("Authorization", "Bearer "+f.opts.Token)
	}
	return req
}

func parseMeta(resp *http.Response) (meta, error) {
	m := meta{commit: resp.Header.Get("X-Repo-Commit"), size: -1}
	if !commitRe.MatchString(m.commit) {
		return m, fmt.Errorf("X-Repo-Commit %q is not a commit hash", m.commit)
	}
	m.etag = cmp.Or(resp.Header.Get("X-Linked-Etag"), resp.Header.Get("ETag"))
	m.etag = strings.Trim(strings.TrimPrefix(m.etag, "W/"), `"`)
	if !etagRe.MatchString(m.etag) {
		return m, fmt.Errorf("etag %q is not a safe blob name", m.etag)
	}
	if s := resp.Header.Get("X-Linked-Size"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return m, fmt.Errorf("X-Linked-Size %q is not a size", s)
		}
		m.size = n
	} else if resp.StatusCode == http.StatusOK {
		m.size = resp.ContentLength
	}
	return m, nil
}

// transientError marks a failure worth retrying.
type transientError struct{ err error }

func (t *transientError) Error() string { return t.err.Error() }
func (t *transientError) Unwrap() error { return t.err }

var errStalled = errors.New("no data received within the stall timeout")

// netError classifies a transport error: the caller's cancellation is final, anything else is
// worth a retry, including the stall watchdog cancelling an attempt (net/http reports its cause).
func netError(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return &transientError{err}
}

func (f *fetcher) statusError(resp *http.Response, name string) error {
	detail := fmt.Sprintf("%s: HTTP %d", f.where(name), resp.StatusCode)
	if msg := strings.TrimSpace(resp.Header.Get("X-Error-Message")); msg != "" {
		detail += " (" + msg + ")"
	}
	switch code := resp.StatusCode; {
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		hint := "set HF_TOKEN to a token with read access"
		if f.opts.Token != "" {
			hint = "the HF_TOKEN sent was refused or lacks access"
		}
		return fmt.Errorf("%w: %s: %s; a gated model also needs its terms accepted on the hub, and a missing repository reads the same", ErrUnauthorized, detail, hint)
	case code == http.StatusNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, detail)
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		return &transientError{errors.New(detail)}
	default:
		return fmt.Errorf("%w: %s", ErrProtocol, detail)
	}
}

// retry runs op until it succeeds or fails for good, waiting RetryDelay, doubled each time,
// between transient failures.
func (f *fetcher) retry(ctx context.Context, op func() error) error {
	delay := f.opts.RetryDelay
	for attempt := 1; ; attempt++ {
		err := op()
		var t *transientError
		if !errors.As(err, &t) {
			return err
		}
		if attempt > f.opts.Retries {
			return fmt.Errorf("%w (attempts: %d): %w", ErrUnavailable, attempt, t.err)
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(delay):
		}
		delay *= 2
	}
}

// download fetches a blob under its lock into blob.incomplete, resuming what is there, checks it
// and renames it into place. A failed transfer leaves the partial file for the next run.
func (f *fetcher) download(ctx context.Context, name string, m meta, blob string) error {
	unlock, err := lockFile(ctx, filepath.Join(f.locks, m.etag+".lock"))
	if err != nil {
		return err
	}
	defer unlock()
	if isFile(blob) {
		return nil // another process fetched it while we waited for the lock
	}
	part := blob + ".incomplete"
	var size int64
	var sum []byte
	f.bar.begin(name)
	err = f.retry(ctx, func() error {
		var err error
		size, sum, err = f.attempt(ctx, name, m, part)
		return err
	})
	f.bar.end(err == nil)
	if err != nil {
		if errors.Is(err, ErrCorrupt) {
			os.Remove(part)
		}
		return err
	}
	if err := verify(m, size, sum); err != nil {
		os.Remove(part)
		return fmt.Errorf("%w: %s: %v", ErrCorrupt, f.where(name), err)
	}
	return os.Rename(part, blob)
}

// verify checks a finished blob against the size and, for LFS files, the sha256 the hub named.
func verify(m meta, size int64, sum []byte) error {
	if m.size >= 0 && size != m.size {
		return fmt.Errorf("got %d bytes, the hub announced %d", size, m.size)
	}
	if got := hex.EncodeToString(sum); sha256Re.MatchString(m.etag) && got != m.etag {
		return fmt.Errorf("sha256 %s, the hub announced %s", got, m.etag)
	}
	return nil
}

// attempt brings the partial file at path one GET closer to complete, asking only for the bytes
// it lacks (a Range request); it returns the size and sha256 of everything in it.
func (f *fetcher) attempt(ctx context.Context, name string, m meta, path string) (int64, []byte, error) {
	p, err := openPartial(path, m.size)
	if err != nil {
		return 0, nil, err
	}
	defer p.file.Close()
	if p.size != m.size { // equal: complete already, the last run died before the rename
		if err := f.fill(ctx, name, m, p); err != nil {
			return p.size, nil, err
		}
	}
	return p.size, p.hash.Sum(nil), p.file.Close()
}

// fill makes the GET and appends its body to p.
func (f *fetcher) fill(ctx context.Context, name string, m meta, p *partial) error {
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req := f.request(actx, http.MethodGet, name)
	if p.size > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", p.size))
	}
	resp, err := f.getClient.Do(req)
	if err != nil {
		return netError(ctx, fmt.Errorf("%s: %w", f.where(name), err))
	}
	defer resp.Body.Close()
	if err := f.startAt(resp, name, p); err != nil {
		return err
	}
	total := m.size
	if resp.ContentLength >= 0 {
		total = p.size + resp.ContentLength
	}
	if m.size >= 0 && total != m.size {
		return fmt.Errorf("%w: %s: server sends %d bytes, the hub announced %d", ErrCorrupt, f.where(name), total, m.size)
	}
	f.bar.resume(p.size, total)
	body := newWatchdog(resp.Body, f.opts.StallTimeout, func() { cancel(errStalled) })
	defer body.stop()
	_, err = io.CopyBuffer(io.MultiWriter(p, f.bar), body, make([]byte, copyBufferBytes))
	switch {
	case err != nil && body.err == nil: // the disk failed, not the network: retrying won't help
		return fmt.Errorf("%s: writing %s: %w", f.where(name), p.file.Name(), err)
	case err != nil:
		return netError(ctx, fmt.Errorf("%s: after %d bytes: %w", f.where(name), p.size, err))
	}
	return nil
}

// startAt checks the response status against the Range asked for, emptying p when the server
// sends the whole file instead.
func (f *fetcher) startAt(resp *http.Response, name string, p *partial) error {
	switch resp.StatusCode {
	case http.StatusOK: // no Range asked, or the server ignored it
		return p.restart()
	case http.StatusPartialContent:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != p.size {
			return fmt.Errorf("%w: %s: asked for bytes %d-, got Content-Range %q", ErrProtocol, f.where(name), p.size, resp.Header.Get("Content-Range"))
		}
		return nil
	case http.StatusRequestedRangeNotSatisfiable:
		had := p.size
		if err := p.restart(); err != nil {
			return err
		}
		return &transientError{fmt.Errorf("%s: HTTP 416 for bytes %d-", f.where(name), had)}
	default:
		return f.statusError(resp, name)
	}
}

// partial is a blob being downloaded: its .incomplete file, the size and the running sha256 of
// what the file holds.
type partial struct {
	file *os.File
	hash hash.Hash
	size int64
}

// openPartial opens or creates path and hashes what an earlier run left there, dropping it when
// it is longer than want (-1: unknown) bytes.
func openPartial(path string, want int64) (*partial, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	p := &partial{file: file, hash: sha256.New()}
	if p.size, err = io.Copy(p.hash, file); err == nil && want >= 0 && p.size > want {
		err = p.restart()
	}
	if err != nil {
		file.Close()
		return nil, err
	}
	return p, nil
}

// Write appends to the file and the hash.
func (p *partial) Write(b []byte) (int, error) {
	n, err := p.file.Write(b)
	p.hash.Write(b[:n])
	p.size += int64(n)
	return n, err
}

// restart empties the file and its hash.
func (p *partial) restart() error {
	p.hash.Reset()
	p.size = 0
	if err := p.file.Truncate(0); err != nil {
		return err
	}
	_, err := p.file.Seek(0, io.SeekStart)
	return err
}

// rangeStart reads the first byte position of a Content-Range "bytes first-last/total".
func rangeStart(cr string) (int64, bool) {
	spec, ok := strings.CutPrefix(cr, "bytes ")
	if !ok {
		return 0, false
	}
	first, _, ok := strings.Cut(spec, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(first, 10, 64)
	return n, err == nil && n >= 0
}

// watchdog calls abort when no byte arrives for d; it records read errors so a failed copy
// can be told apart from a failed disk write.
type watchdog struct {
	r     io.Reader
	d     time.Duration
	timer *time.Timer
	err   error
}

func newWatchdog(r io.Reader, d time.Duration, abort func()) *watchdog {
	return &watchdog{r: r, d: d, timer: time.AfterFunc(d, abort)}
}

func (w *watchdog) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 {
		w.timer.Reset(w.d)
	}
	if err != nil && err != io.EOF {
		w.err = err
	}
	return n, err
}

func (w *watchdog) stop() { w.timer.Stop() }
