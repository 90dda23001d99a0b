package hub

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCommit is the fake hub's head commit of main.
const testCommit = "3c2a1b0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b"

// fakeHub serves a model the way huggingface.co's resolve endpoint does: HEAD and GET on
// /{org}/{name}/resolve/{revision}/{file} with X-Repo-Commit and ETag headers; LFS files answer
// with a 302 to a separate "CDN" server and carry X-Linked-Etag (their sha256) and X-Linked-Size.
type fakeHub struct {
	org, name string
	commit    string
	revisions map[string]bool // branch and tag names that resolve to commit
	token     string          // when set, the hub answers 401 without "Bearer <token>"
	files     map[string]fakeFile

	cutAfter    map[string]int64 // the first CDN GET of this file dies after this many bytes
	stallAfter  map[string]int64 // the first CDN GET of this file hangs after this many bytes
	corrupt     map[string]bool  // the CDN serves a flipped byte under the true sha256
	ignoreRange bool             // the CDN always answers 200 with the whole file
	failHeads   int              // this many HEADs get a 503 first
	cdnDelay    time.Duration    // the CDN waits this long before answering, so downloads overlap

	mu   sync.Mutex
	hits []hit
	cut  map[string]bool // files whose first CDN GET already failed

	hub, cdn *httptest.Server
}

type fakeFile struct {
	data []byte
	sha  string // sha256 of an LFS file, "" for a file kept in git
}

// lfsFile stores data in LFS, hashed once so the fake hub stays cheap in benchmarks.
func lfsFile(data []byte) fakeFile { return fakeFile{data: data, sha: sha256Hex(data)} }

// hit is one request a fake server saw.
type hit struct {
	server, method, path, auth, rng string
}

// newFakeHub serves the tiny Qwen2 fixture (config and weights from testdata, the weights in
// LFS), a generated tokenizer.json and a generation_config.json; tokenizer_config.json is
// missing, like in some real repositories. The environment is cleared of HF_* variables.
func newFakeHub(t testing.TB) *fakeHub {
	t.Helper()
	clearEnv(t)
	h := &fakeHub{
		org: "tiny-org", name: "qwen2-tiny", commit: testCommit,
		revisions: map[string]bool{"main": true, "refs/pr/1": true},
		files: map[string]fakeFile{
			"config.json":            {data: readTestdata(t, "config.json")},
			"tokenizer.json":         {data: genTokenizer(64)},
			"generation_config.json": {data: []byte(`{"eos_token_id": 2, "do_sample": true, "temperature": 0.7}`)},
			"model.safetensors":      lfsFile(readTestdata(t, "model.safetensors")),
		},
		cutAfter: map[string]int64{}, stallAfter: map[string]int64{}, corrupt: map[string]bool{},
		cut: map[string]bool{},
	}
	// Both assigned before either serves, the CDN started first: the hub's handler reads its URL.
	h.hub = httptest.NewUnstartedServer(http.HandlerFunc(h.serveHub))
	h.cdn = httptest.NewUnstartedServer(http.HandlerFunc(h.serveCDN))
	h.cdn.Start()
	h.hub.Start()
	t.Cleanup(h.cdn.Close)
	t.Cleanup(h.hub.Close)
	return h
}

// clearEnv keeps the developer's own HF_* settings and token out of the tests.
func clearEnv(t testing.TB) {
	for _, k := range []string{"HF_HUB_CACHE", "HF_ENDPOINT", "HF_TOKEN", "HF_TOKEN_PATH", "HF_HUB_OFFLINE", "XDG_CACHE_HOME"} {
		t.Setenv(k, "")
	}
	t.Setenv("HF_HOME", t.TempDir())
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "qwen2-tiny", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// genTokenizer is a stand-in tokenizer.json: the hub never reads it, only its bytes matter.
func genTokenizer(vocab int) []byte {
	v := map[string]int{}
	for i := range vocab {
		v["tok"+strconv.Itoa(i)] = i
	}
	b, err := json.Marshal(map[string]any{"version": "1.0", "model": map[string]any{"type": "BPE", "vocab": v, "merges": []string{}}})
	if err != nil {
		panic(err)
	}
	return b
}

// shard replaces model.safetensors with an index and two LFS shards.
func (h *fakeHub) shard() {
	w := h.files["model.safetensors"].data
	delete(h.files, "model.safetensors")
	a, b := "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
	h.files[a] = lfsFile(w[:len(w)/2])
	h.files[b] = lfsFile(w[len(w)/2:])
	idx, _ := json.Marshal(map[string]any{
		"metadata":   map[string]any{"total_size": len(w)},
		"weight_map": map[string]string{"model.embed_tokens.weight": a, "model.norm.weight": b, "model.layers.0.mlp.up_proj.weight": a},
	})
	h.files[indexFile] = fakeFile{data: idx}
}

// options points Resolve at the fake hub with a fresh cache and millisecond retries.
func (h *fakeHub) options(t testing.TB) Options {
	return Options{CacheDir: t.TempDir(), Endpoint: h.hub.URL, Token: h.token, RetryDelay: time.Millisecond, StallTimeout: 5 * time.Second}
}

func (h *fakeHub) ref() string { return h.org + "/" + h.name }

func (h *fakeHub) record(server string, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hits = append(h.hits, hit{server, r.Method, r.URL.EscapedPath(), r.Header.Get("Authorization"), r.Header.Get("Range")})
}

// requests returns the hits so far and forgets them. Taking h.mu also publishes the test's
// changes to h's settings to the handlers, which take h.mu first (in record): requests from
// another process carry no happens-before edge of their own.
func (h *fakeHub) requests() []hit {
	h.mu.Lock()
	defer h.mu.Unlock()
	hits := h.hits
	h.hits = nil
	return hits
}

func (h *fakeHub) serveHub(w http.ResponseWriter, r *http.Request) {
	h.record("hub", r)
	parts := strings.Split(r.URL.EscapedPath(), "/") // "", org, name, "resolve", revision, file
	if len(parts) != 6 || parts[3] != "resolve" {
		http.NotFound(w, r)
		return
	}
	rev, err := url.PathUnescape(parts[4])
	if err != nil {
		http.Error(w, "bad revision", http.StatusBadRequest)
		return
	}
	h.mu.Lock()
	fail := r.Method == http.MethodHead && h.failHeads > 0
	if fail {
		h.failHeads--
	}
	h.mu.Unlock()
	switch {
	case fail:
		http.Error(w, "try later", http.StatusServiceUnavailable)
	case h.token != "" && r.Header.Get("Authorization") != "Bearer "+h.token:
		hubError(w, http.StatusUnauthorized, "Invalid credentials in Authorization header")
	case parts[1] != h.org || parts[2] != h.name:
		hubError(w, http.StatusNotFound, "Repository not found")
	case !h.revisions[rev] && rev != h.commit:
		hubError(w, http.StatusNotFound, "Invalid rev id: "+rev)
	default:
		h.serveFile(w, r, parts[5])
	}
}

func hubError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("X-Error-Message", msg)
	http.Error(w, msg, code)
}

func (h *fakeHub) serveFile(w http.ResponseWriter, r *http.Request, name string) {
	w.Header().Set("X-Repo-Commit", h.commit)
	f, ok := h.files[name]
	if !ok {
		hubError(w, http.StatusNotFound, "Entry not found")
		return
	}
	if f.sha == "" {
		w.Header().Set("ETag", `"`+gitBlobID(f.data)+`"`)
		http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(f.data))
		return
	}
	sum := f.sha
	w.Header().Set("ETag", `"`+gitBlobID([]byte("version https://git-lfs.github.com/spec/v1\noid sha256:"+sum))+`"`)
	w.Header().Set("X-Linked-Etag", `"`+sum+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(f.data)))
	http.Redirect(w, r, h.cdn.URL+"/lfs/"+sum+"?file="+name, http.StatusFound)
}

func (h *fakeHub) serveCDN(w http.ResponseWriter, r *http.Request) {
	h.record("cdn", r)
	time.Sleep(h.cdnDelay)
	name := r.URL.Query().Get("file")
	f, ok := h.files[name]
	if !ok || r.URL.Path != "/lfs/"+f.sha {
		http.NotFound(w, r)
		return
	}
	data := f.data
	if h.corrupt[name] {
		data = bytes.Clone(data)
		data[len(data)/3] ^= 0xff
	}
	h.mu.Lock()
	first := !h.cut[name]
	h.cut[name] = true
	h.mu.Unlock()
	if n, ok := h.cutAfter[name]; ok && first {
		h.failMidway(w, data, n, func() {})
		return
	}
	if n, ok := h.stallAfter[name]; ok && first {
		h.failMidway(w, data, n, func() { <-r.Context().Done() })
		return
	}
	if h.ignoreRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}

// failMidway promises the whole file, sends n bytes, waits for then, and drops the connection.
func (h *fakeHub) failMidway(w http.ResponseWriter, data []byte, n int64, then func()) {
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	w.Write(data[:n])
	rc := http.NewResponseController(w)
	rc.Flush()
	then()
	conn, _, err := rc.Hijack()
	if err == nil {
		conn.Close()
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// gitBlobID is git's object id of a file, the ETag the hub gives files kept outside LFS.
func gitBlobID(b []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(b))
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// etagOf is the blob name a file gets in the cache.
func (h *fakeHub) etagOf(name string) string {
	if f := h.files[name]; f.sha != "" {
		return f.sha
	}
	return gitBlobID(h.files[name].data)
}
