package hub

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// resolve runs Resolve on the fake hub's model and fails the test on error.
func resolve(t *testing.T, h *fakeHub, ref string, o Options) string {
	t.Helper()
	dir, err := Resolve(context.Background(), ref, o)
	if err != nil {
		t.Fatalf("Resolve(%q): %v", ref, err)
	}
	return dir
}

// checkSnapshot asserts dir holds exactly want, each file a relative link to its blob holding
// the hub's bytes.
func checkSnapshot(t *testing.T, h *fakeHub, dir string, want ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("snapshot holds %v, want %v", got, want)
	}
	for _, name := range want {
		target, err := os.Readlink(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if wantTarget := "../../blobs/" + h.etagOf(name); target != wantTarget {
			t.Errorf("%s links to %q, want %q", name, target, wantTarget)
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(b, h.files[name].data) {
			t.Errorf("%s: %d bytes (err %v), want the hub's %d", name, len(b), err, len(h.files[name].data))
		}
	}
}

func TestResolveDownloadsIntoHFCacheLayout(t *testing.T) {
	h := newFakeHub(t)
	h.token = "hf_secret"
	o := h.options(t)
	var log bytes.Buffer
	o.Progress = &log

	dir := resolve(t, h, h.ref(), o)

	repo := filepath.Join(o.CacheDir, "models--tiny-org--qwen2-tiny")
	if want := filepath.Join(repo, "snapshots", testCommit); dir != want {
		t.Fatalf("dir = %s, want %s", dir, want)
	}
	checkSnapshot(t, h, dir, "config.json", "generation_config.json", "model.safetensors", "tokenizer.json")
	if ref, err := os.ReadFile(filepath.Join(repo, "refs", "main")); err != nil || string(ref) != testCommit {
		t.Errorf("refs/main = %q (err %v), want %s", ref, err, testCommit)
	}
	if !isFile(filepath.Join(repo, ".no_exist", testCommit, "tokenizer_config.json")) {
		t.Error("no .no_exist record for the missing tokenizer_config.json")
	}
	if left, _ := filepath.Glob(filepath.Join(repo, "blobs", "*.incomplete")); len(left) > 0 {
		t.Errorf("partial files left behind: %v", left)
	}
	if !isFile(filepath.Join(o.CacheDir, ".locks", "models--tiny-org--qwen2-tiny", h.etagOf("model.safetensors")+".lock")) {
		t.Error("no lock file where huggingface_hub keeps them")
	}
	cdnGets := 0
	for _, r := range h.requests() {
		switch {
		case r.server == "hub" && r.auth != "Bearer hf_secret":
			t.Errorf("hub request %s %s without the token (Authorization %q)", r.method, r.path, r.auth)
		case r.server == "cdn" && r.auth != "":
			t.Errorf("token leaked to the CDN: %s %s has Authorization %q", r.method, r.path, r.auth)
		case r.server == "cdn":
			cdnGets++
		}
	}
	if cdnGets != 1 {
		t.Errorf("%d CDN requests, want 1 for model.safetensors", cdnGets)
	}
	lines := strings.Split(strings.TrimSuffix(log.String(), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[3], "model.safetensors  785.5 kB / 785.5 kB  ") || !strings.HasSuffix(lines[3], "100%") {
		t.Errorf("progress log, want one line per downloaded file:\n%s", log.String())
	}
}

func TestResolveReusesCacheWithoutNetwork(t *testing.T) {
	h := newFakeHub(t)
	o := h.options(t)
	first := resolve(t, h, h.ref(), o)
	h.requests()

	if again := resolve(t, h, h.ref(), o); again != first {
		t.Errorf("second Resolve = %s, want %s", again, first)
	}
	if hits := h.requests(); len(hits) != 0 {
		t.Errorf("second Resolve made %d requests, want 0: %v", len(hits), hits)
	}
	h.hub.Close()
	t.Setenv("HF_HUB_OFFLINE", "1")
	if again := resolve(t, h, h.ref()+"@"+testCommit, o); again != first {
		t.Errorf("offline Resolve by commit = %s, want %s", again, first)
	}
}

// TestResolveFindsPythonDownloads builds the cache by hand as huggingface_hub leaves it and
// points the endpoint at a closed port: the snapshot must be found without a request.
func TestResolveFindsPythonDownloads(t *testing.T) {
	clearEnv(t)
	cache := t.TempDir()
	repo := filepath.Join(cache, "models--Qwen--Qwen2.5-1.5B-Instruct")
	commit := strings.Repeat("ab", 20)
	files := map[string]string{"config.json": "{}", "tokenizer.json": "{}", "model.safetensors": "weights"}
	for name, content := range files {
		blob := filepath.Join(repo, "blobs", gitBlobID([]byte(content)))
		if err := writeAtomic(blob, []byte(content)); err != nil {
			t.Fatal(err)
		}
		if err := link(filepath.Join(repo, "snapshots", commit, name), blob); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeAtomic(filepath.Join(repo, "refs", "main"), []byte(commit+"\n")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HF_HUB_CACHE", cache)
	t.Setenv("HF_ENDPOINT", "http://127.0.0.1:1")

	dir, err := Resolve(context.Background(), "Qwen/Qwen2.5-1.5B-Instruct", Options{})
	if want := filepath.Join(repo, "snapshots", commit); err != nil || dir != want {
		t.Fatalf("Resolve = %q, %v; want %s", dir, err, want)
	}
}

func TestResolveResumes(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(h *fakeHub, partial string)
		wantRanges []string // the Range header of each CDN request
	}{
		{"connection cut mid-file", func(h *fakeHub, _ string) {
			h.cutAfter["model.safetensors"] = 300_000
		}, []string{"", "bytes=300000-"}},
		{"stalled mid-file", func(h *fakeHub, _ string) {
			h.stallAfter["model.safetensors"] = 200_000
		}, []string{"", "bytes=200000-"}},
		{"partial file from an earlier run", func(h *fakeHub, partial string) {
			writePartial(partial, h.files["model.safetensors"].data[:100_000])
		}, []string{"bytes=100000-"}},
		{"server ignores Range", func(h *fakeHub, partial string) {
			h.ignoreRange = true
			writePartial(partial, h.files["model.safetensors"].data[:100_000])
		}, []string{"bytes=100000-"}},
		{"partial file complete but not renamed", func(h *fakeHub, partial string) {
			writePartial(partial, h.files["model.safetensors"].data)
		}, nil},
		{"partial file longer than the blob", func(h *fakeHub, partial string) {
			writePartial(partial, append(bytes.Clone(h.files["model.safetensors"].data), "junk"...))
		}, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			o := h.options(t)
			o.StallTimeout = 200 * time.Millisecond
			partial := filepath.Join(o.CacheDir, "models--tiny-org--qwen2-tiny", "blobs", h.etagOf("model.safetensors")+".incomplete")
			tt.setup(h, partial)

			dir := resolve(t, h, h.ref(), o)

			checkSnapshot(t, h, dir, "config.json", "generation_config.json", "model.safetensors", "tokenizer.json")
			var ranges []string
			for _, r := range h.requests() {
				if r.server == "cdn" {
					ranges = append(ranges, r.rng)
				}
			}
			if !slices.Equal(ranges, tt.wantRanges) {
				t.Errorf("CDN requests with Range %q, want %q", ranges, tt.wantRanges)
			}
		})
	}
}

func writePartial(path string, data []byte) {
	if err := writeAtomic(path, data); err != nil {
		panic(err)
	}
}

func TestResolveShardedWeights(t *testing.T) {
	h := newFakeHub(t)
	h.shard()
	o := h.options(t)

	dir := resolve(t, h, h.ref(), o)

	checkSnapshot(t, h, dir, "config.json", "generation_config.json", "model-00001-of-00002.safetensors",
		"model-00002-of-00002.safetensors", indexFile, "tokenizer.json")
	if !isFile(filepath.Join(filepath.Dir(filepath.Dir(dir)), ".no_exist", testCommit, "model.safetensors")) {
		t.Error("no .no_exist record for model.safetensors")
	}
	h.requests()
	resolve(t, h, h.ref(), o)
	if hits := h.requests(); len(hits) != 0 {
		t.Errorf("cached sharded model: %d requests, want 0", len(hits))
	}
}

func TestResolveRevisions(t *testing.T) {
	tests := []struct {
		name, revision string
		wantURLRev     string // how the revision appears in the first request's path
		wantRefFile    string // "" when no refs file is written
	}{
		{"branch", "main", "/resolve/main/", "main"},
		{"pull request ref", "refs/pr/1", "/resolve/refs%2Fpr%2F1/", filepath.Join("refs", "pr", "1")},
		{"commit hash", testCommit, "/resolve/" + testCommit + "/", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			o := h.options(t)
			dir := resolve(t, h, h.ref()+"@"+tt.revision, o)
			if filepath.Base(dir) != testCommit {
				t.Errorf("dir = %s, want the snapshot of %s", dir, testCommit)
			}
			hits := h.requests()
			if !strings.Contains(hits[0].path, tt.wantURLRev) {
				t.Errorf("first request %s, want revision as %s", hits[0].path, tt.wantURLRev)
			}
			for _, r := range hits[1:] {
				if r.server == "hub" && !strings.Contains(r.path, "/resolve/"+testCommit+"/") {
					t.Errorf("request %s not pinned to the commit", r.path)
				}
			}
			refs := filepath.Join(o.CacheDir, "models--tiny-org--qwen2-tiny", "refs")
			if tt.wantRefFile == "" {
				if _, err := os.Stat(refs); err == nil {
					t.Error("refs written for a commit hash")
				}
			} else if b, err := os.ReadFile(filepath.Join(refs, tt.wantRefFile)); err != nil || string(b) != testCommit {
				t.Errorf("refs/%s = %q (err %v)", tt.wantRefFile, b, err)
			}
		})
	}
}

func TestResolveErrors(t *testing.T) {
	tests := []struct {
		name     string
		setup    func(h *fakeHub, o *Options)
		ref      string // "" for the fake hub's model
		wantErr  error
		wantText string
	}{
		{"no token for a private model", func(h *fakeHub, o *Options) { h.token = "hf_secret" }, "", ErrUnauthorized, "set HF_TOKEN"},
		{"wrong token", func(h *fakeHub, o *Options) { h.token = "hf_secret"; o.Token = "hf_wrong" }, "", ErrUnauthorized, "HF_TOKEN sent was refused"},
		{"required file missing", func(h *fakeHub, o *Options) { delete(h.files, "tokenizer.json") }, "", ErrNotFound, "tokenizer.json: HTTP 404"},
		{"no weights", func(h *fakeHub, o *Options) { delete(h.files, "model.safetensors") }, "", ErrNotFound, indexFile},
		{"unknown repository", nil, "tiny-org/other", ErrNotFound, "Repository not found"},
		{"unknown revision", nil, "tiny-org/qwen2-tiny@v9", ErrNotFound, "Invalid rev id: v9"},
		{"corrupt LFS blob", func(h *fakeHub, o *Options) { h.corrupt["model.safetensors"] = true }, "", ErrCorrupt, "sha256"},
		{"hub keeps failing", func(h *fakeHub, o *Options) { h.failHeads = 100; o.Retries = 2 }, "", ErrUnavailable, "(attempts: 3): tiny-org/qwen2-tiny@main: config.json: HTTP 503"},
		{"transfer stalls", func(h *fakeHub, o *Options) {
			h.stallAfter["model.safetensors"] = 1000
			o.Retries, o.StallTimeout = -1, 100*time.Millisecond
		}, "", ErrUnavailable, "(attempts: 1): tiny-org/qwen2-tiny@main: model.safetensors: after 1000 bytes: no data received within the stall timeout"},
		{"unsafe commit header", func(h *fakeHub, o *Options) { h.commit = "../../../../tmp/x" }, "", ErrProtocol, "X-Repo-Commit"},
		{"unsafe shard name", func(h *fakeHub, o *Options) {
			h.shard()
			h.files[indexFile] = fakeFile{data: []byte(`{"weight_map": {"w": "../../evil.safetensors"}}`)}
		}, "", ErrProtocol, "unsafe shard"},
		{"offline and not cached", func(h *fakeHub, o *Options) { o.Offline = true }, "", ErrOffline, "never fetched"},
		{"endpoint not http", func(h *fakeHub, o *Options) { o.Endpoint = "ftp://mirror" }, "", ErrConfig, "HF_ENDPOINT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newFakeHub(t)
			o := h.options(t)
			if tt.setup != nil {
				tt.setup(h, &o)
			}
			ref := cmp.Or(tt.ref, h.ref())
			dir, err := Resolve(context.Background(), ref, o)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantText) {
				t.Fatalf("Resolve = %q, %v; want %v mentioning %q", dir, err, tt.wantErr, tt.wantText)
			}
			t.Log(err)
			if tt.wantErr == ErrOffline || tt.wantErr == ErrConfig {
				if hits := h.requests(); len(hits) != 0 {
					t.Errorf("%d requests, want none", len(hits))
				}
			}
			blobs := filepath.Join(o.CacheDir, "models--tiny-org--qwen2-tiny", "blobs")
			if bad, _ := filepath.Glob(filepath.Join(blobs, h.etagOf("model.safetensors")+"*")); tt.wantErr == ErrCorrupt && len(bad) != 0 {
				t.Errorf("corrupt download kept: %v", bad)
			}
		})
	}
}

func TestResolveRetriesTransientFailures(t *testing.T) {
	h := newFakeHub(t)
	h.failHeads = 2
	o := h.options(t)
	resolve(t, h, h.ref(), o)
	heads := 0
	for _, r := range h.requests() {
		if r.method == "HEAD" && strings.HasSuffix(r.path, "/config.json") {
			heads++
		}
	}
	if heads != 3 {
		t.Errorf("%d HEADs of config.json, want 2 failures and a success", heads)
	}
}

func TestResolveCancelled(t *testing.T) {
	h := newFakeHub(t)
	h.failHeads = 1000
	o := h.options(t)
	o.RetryDelay = time.Hour
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for len(h.requests()) == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := Resolve(ctx, h.ref(), o)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnavailable) {
		t.Fatalf("Resolve = %v, want context.Canceled", err)
	}
}

// TestResolveConcurrent resolves one model from several goroutines sharing a cache: each blob is
// fetched once and every caller gets the whole model.
func TestResolveConcurrent(t *testing.T) {
	h := newFakeHub(t)
	o := h.options(t)
	const callers = 4
	dirs := make([]string, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() { dirs[i], errs[i] = Resolve(context.Background(), h.ref(), o) })
	}
	wg.Wait()
	for i := range callers {
		if errs[i] != nil {
			t.Fatalf("caller %d: %v", i, errs[i])
		}
		checkSnapshot(t, h, dirs[i], "config.json", "generation_config.json", "model.safetensors", "tokenizer.json")
	}
	gets := map[string]int{}
	for _, r := range h.requests() {
		if r.method == "GET" {
			gets[r.server+" "+r.path]++
		}
	}
	if len(gets) != 5 { // four hub files and the weights' CDN copy
		t.Errorf("GETs %v, want 5 distinct", gets)
	}
	for path, n := range gets {
		if n != 1 {
			t.Errorf("%s fetched %d times, want once", path, n)
		}
	}
}

func TestResolveDirectories(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "config.json")
	if err := os.WriteFile(file, []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, ref string
		want      string
		wantErr   error
	}{
		{"directory", dir, dir, nil},
		{"file", file, "", ErrRef},
		{"missing absolute path", filepath.Join(dir, "missing"), "", ErrRef},
		{"missing relative path", "./models/qwen", "", ErrRef},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(context.Background(), tt.ref, Options{Offline: true})
			if got != tt.want || !errors.Is(err, tt.wantErr) {
				t.Errorf("Resolve(%q) = %q, %v; want %q, %v", tt.ref, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestParseRef(t *testing.T) {
	good := []struct {
		in   string
		want ref
	}{
		{"Qwen/Qwen2.5-1.5B-Instruct", ref{"Qwen", "Qwen2.5-1.5B-Instruct", "main"}},
		{"Qwen/Qwen2.5-1.5B-Instruct@v1.0", ref{"Qwen", "Qwen2.5-1.5B-Instruct", "v1.0"}},
		{"a/b@refs/pr/12", ref{"a", "b", "refs/pr/12"}},
		{"my_org/model_x@" + testCommit, ref{"my_org", "model_x", testCommit}},
	}
	for _, tt := range good {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseRef(tt.in)
			if err != nil || got != tt.want {
				t.Errorf("parseRef(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			}
		})
	}
	bad := []struct{ in, why string }{
		{"", "org/ prefix"},
		{"Qwen", "org/ prefix"},
		{"Qwen/", "valid org or model name"},
		{"/Qwen", "valid org or model name"},
		{"a/b/c", "exactly one /"},
		{"../../etc/passwd", "exactly one /"},
		{"../x", "valid org or model name"},
		{"a/..", "valid org or model name"},
		{"a/b..c", "valid org or model name"},
		{"a--b/c", "valid org or model name"},
		{"-a/b", "valid org or model name"},
		{"a/b.", "valid org or model name"},
		{"a/b c", "valid org or model name"},
		{`a\b/c`, "valid org or model name"},
		{"a/b@", "empty revision"},
		{"a/b@..", "invalid revision"},
		{"a/b@x/../../y", "invalid revision"},
		{"a/b@/abs", "invalid revision"},
		{"a/b@x//y", "invalid revision"},
		{"a/b@.hidden", "invalid revision"},
		{"a/b@v1@v2", "invalid revision"},
		{"a/b@main.lock", "invalid revision"},
		{"a/" + strings.Repeat("x", 100), "longer than 96"},
	}
	for _, tt := range bad {
		t.Run("bad "+tt.in, func(t *testing.T) {
			_, err := parseRef(tt.in)
			if !errors.Is(err, ErrRef) || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("parseRef(%q) = %v, want ErrRef saying %q", tt.in, err, tt.why)
			}
		})
	}
}

// FuzzParseRef checks that whatever parseRef accepts is safe as a path and a URL part and
// survives a round trip.
func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"Qwen/Qwen2.5-1.5B-Instruct", "a/b@refs/pr/1", "a/b@../x", "a/b/c", "x@y", "a--b/c", "a/b@" + testCommit} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := parseRef(s)
		if err != nil {
			return
		}
		if strings.ContainsAny(r.folder(), `/\`) || strings.Contains(r.folder(), "..") {
			t.Errorf("%q: unsafe folder %q", s, r.folder())
		}
		for part := range strings.SplitSeq(r.revision, "/") {
			if part == "" || part == "." || part == ".." || strings.Contains(part, `\`) {
				t.Errorf("%q: unsafe revision %q", s, r.revision)
			}
		}
		if again, err := parseRef(r.String()); err != nil || again != r {
			t.Errorf("%q: round trip %q gave %+v, %v", s, r.String(), again, err)
		}
	})
}

func TestOptionsFromEnvironment(t *testing.T) {
	home := t.TempDir()
	tokenFile := filepath.Join(home, "hf-token")
	if err := os.WriteFile(tokenFile, []byte("hf_from_file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		env  map[string]string
		opts Options
		want Options // only CacheDir, Endpoint, Token and Offline are compared
	}{
		{"defaults", map[string]string{"HOME": home},
			Options{}, Options{CacheDir: filepath.Join(home, ".cache", "huggingface", "hub"), Endpoint: defaultEndpoint}},
		{"XDG cache", map[string]string{"HOME": home, "XDG_CACHE_HOME": "/xdg"},
			Options{}, Options{CacheDir: "/xdg/huggingface/hub", Endpoint: defaultEndpoint}},
		{"HF_HOME", map[string]string{"HF_HOME": home + "/hf"},
			Options{}, Options{CacheDir: home + "/hf/hub", Endpoint: defaultEndpoint}},
		{"HF_HUB_CACHE wins", map[string]string{"HF_HOME": "/hf", "HF_HUB_CACHE": "/cache"},
			Options{}, Options{CacheDir: "/cache", Endpoint: defaultEndpoint}},
		{"endpoint token offline", map[string]string{"HF_HUB_CACHE": "/c", "HF_ENDPOINT": "http://mirror", "HF_TOKEN": "hf_env", "HF_HUB_OFFLINE": "yes"},
			Options{}, Options{CacheDir: "/c", Endpoint: "http://mirror", Token: "hf_env", Offline: true}},
		{"token file", map[string]string{"HF_HUB_CACHE": "/c", "HF_TOKEN_PATH": tokenFile, "HF_HUB_OFFLINE": "0"},
			Options{}, Options{CacheDir: "/c", Endpoint: defaultEndpoint, Token: "hf_from_file"}},
		{"options beat environment", map[string]string{"HF_HUB_CACHE": "/c", "HF_ENDPOINT": "http://mirror", "HF_TOKEN": "hf_env"},
			Options{CacheDir: "/mine", Endpoint: "http://other", Token: "hf_mine"}, Options{CacheDir: "/mine", Endpoint: "http://other", Token: "hf_mine"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("HF_HOME", "")
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got, err := tt.opts.withEnv()
			if err != nil {
				t.Fatal(err)
			}
			if got.CacheDir != tt.want.CacheDir || got.Endpoint != tt.want.Endpoint || got.Token != tt.want.Token || got.Offline != tt.want.Offline {
				t.Errorf("withEnv = %+v, want %+v", got, tt.want)
			}
			if got.Retries != defaultRetries || got.RetryDelay != defaultRetryDelay || got.StallTimeout != defaultStallTimeout {
				t.Errorf("retry defaults not applied: %+v", got)
			}
		})
	}
}

// TestResolveTwoProcesses runs the test binary twice at once as child processes resolving into
// one cache: the flock must make them share the download, not corrupt it.
func TestResolveTwoProcesses(t *testing.T) {
	if os.Getenv("HUB_TEST_CHILD_ENDPOINT") != "" {
		return // the child's own run of this test
	}
	h := newFakeHub(t)
	h.cdnDelay = 500 * time.Millisecond
	h.requests() // publishes cdnDelay to the handlers
	cache := t.TempDir()
	var cmds []*exec.Cmd
	for range 2 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestChildResolve$", "-test.count=1")
		cmd.Env = append(os.Environ(), "HUB_TEST_CHILD_ENDPOINT="+h.hub.URL, "HF_HUB_CACHE="+cache)
		cmds = append(cmds, cmd)
	}
	outs := make([][]byte, len(cmds))
	errs := make([]error, len(cmds))
	var wg sync.WaitGroup
	for i, cmd := range cmds {
		wg.Go(func() { outs[i], errs[i] = cmd.CombinedOutput() })
	}
	wg.Wait()
	for i := range cmds {
		if errs[i] != nil || !strings.Contains(string(outs[i]), "resolved ") {
			t.Fatalf("child %d: %v\n%s", i, errs[i], outs[i])
		}
	}
	checkSnapshot(t, h, filepath.Join(cache, "models--tiny-org--qwen2-tiny", "snapshots", testCommit),
		"config.json", "generation_config.json", "model.safetensors", "tokenizer.json")
	cdnGets := 0
	for _, r := range h.requests() {
		if r.server == "cdn" {
			cdnGets++
		}
	}
	if cdnGets != 1 {
		t.Errorf("weights fetched %d times by two processes, want once", cdnGets)
	}
}

// TestChildResolve is TestResolveTwoProcesses's child; alone it does nothing.
func TestChildResolve(t *testing.T) {
	endpoint := os.Getenv("HUB_TEST_CHILD_ENDPOINT")
	if endpoint == "" {
		t.Skip("child of TestResolveTwoProcesses")
	}
	dir, err := Resolve(context.Background(), "tiny-org/qwen2-tiny", Options{Endpoint: endpoint, RetryDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Println("resolved", dir)
}

// FuzzReadShards checks that every shard name read from an index is a plain file name, so a
// hostile index cannot steer a download outside the snapshot.
func FuzzReadShards(f *testing.F) {
	f.Add([]byte(`{"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}`))
	f.Add([]byte(`{"weight_map": {"a": "../x"}}`))
	f.Add([]byte(`{"weight_map": {}}`))
	f.Add([]byte(`[1, 2]`))
	path := filepath.Join(f.TempDir(), indexFile)
	f.Fuzz(func(t *testing.T, index []byte) {
		if err := os.WriteFile(path, index, 0o644); err != nil {
			t.Fatal(err)
		}
		shards, err := readShards(path)
		if err != nil {
			return
		}
		if len(shards) == 0 || !slices.IsSorted(shards) || len(slices.Compact(slices.Clone(shards))) != len(shards) {
			t.Errorf("shards %q: want a sorted, non-empty set", shards)
		}
		for _, s := range shards {
			if s != filepath.Base(s) || strings.HasPrefix(s, ".") || strings.ContainsAny(s, `/\`) {
				t.Errorf("unsafe shard name %q accepted", s)
			}
		}
	})
}
