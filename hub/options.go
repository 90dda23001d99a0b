package hub

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Options say where the cache and the hub are. Every zero field falls back to the environment
// variable huggingface_hub reads, then to huggingface_hub's default.
type Options struct {
	// CacheDir is the cache root: $HF_HUB_CACHE, else $HF_HOME/hub, else
	// $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub.
	CacheDir string
	// Endpoint is the hub's base URL: $HF_ENDPOINT, else https://huggingface.co (mirrors work).
	Endpoint string
	// Token is sent as a bearer token to the Endpoint host only, never to the hosts it redirects
	// to: $HF_TOKEN, else the file $HF_TOKEN_PATH or $HF_HOME/token (what `huggingface-cli login` writes).
	Token string
	// Offline forbids network access; HF_HUB_OFFLINE=1 sets it too. A model missing from the
	// cache is then an error.
	Offline bool
	// Progress receives one progress line per downloaded file; nil is silent. A terminal gets a
	// line redrawn in place, anything else one line per file when it completes.
	Progress io.Writer
	// Retries is how many times a transient failure (network error, 5xx, 429, stall) is retried,
	// resuming where the transfer stopped; 0 means 5, negative means none.
	Retries int
	// RetryDelay is the first wait before a retry, doubled on each further one; 0 means 1s.
	RetryDelay time.Duration
	// StallTimeout aborts (and retries) a request when no response or no body byte arrives for
	// this long; 0 means 60s. It is not a limit on the whole download, which may take hours.
	StallTimeout time.Duration
}

// withEnv fills zero fields from the environment and defaults.
func (o Options) withEnv() (Options, error) {
	var err error
	if o.CacheDir == "" {
		if o.CacheDir, err = cacheRoot(); err != nil {
			return o, err
		}
	}
	if o.Endpoint == "" {
		o.Endpoint = cmp.Or(os.Getenv("HF_ENDPOINT"), defaultEndpoint)
	}
	if o.Token == "" {
		o.Token = envToken()
	}
	o.Offline = o.Offline || truthy(os.Getenv("HF_HUB_OFFLINE"))
	switch {
	case o.Retries == 0:
		o.Retries = defaultRetries
	case o.Retries < 0:
		o.Retries = 0
	}
	o.RetryDelay = cmp.Or(o.RetryDelay, defaultRetryDelay)
	o.StallTimeout = cmp.Or(o.StallTimeout, defaultStallTimeout)
	return o, nil
}

// truthy reads a boolean environment variable the way huggingface_hub does.
func truthy(v string) bool {
	return slices.Contains([]string{"1", "ON", "YES", "TRUE"}, strings.ToUpper(strings.TrimSpace(v)))
}

// hfHome is $HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface.
func hfHome() (string, error) {
	if h := os.Getenv("HF_HOME"); h != "" {
		return h, nil
	}
	if x := os.Getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "huggingface"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("%w: no HF_HUB_CACHE, HF_HOME or home directory: %v", ErrConfig, err)
	}
	return filepath.Join(home, ".cache", "huggingface"), nil
}

func cacheRoot() (string, error) {
	if c := os.Getenv("HF_HUB_CACHE"); c != "" {
		return c, nil
	}
	home, err := hfHome()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, "hub"), nil
}

// envToken is $HF_TOKEN, else the token file; no token at all is fine for public models.
func envToken() string {
	if t := strings.TrimSpace(os.Getenv("HF_TOKEN")); t != "" {
		return t
	}
	path := os.Getenv("HF_TOKEN_PATH")
	if path == "" {
		home, err := hfHome()
		if err != nil {
			return ""
		}
		path = filepath.Join(home, "token")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}
