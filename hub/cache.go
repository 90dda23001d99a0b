package hub

// The on-disk cache, laid out as huggingface_hub lays it out (see the package comment). Every
// write is atomic (a temporary name renamed into place) and blobs are downloaded under a flock,
// so concurrent processes, Python ones included, never see or make a half-written file.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// cachedSnapshot returns the snapshot folder of revision and nil when it holds a whole model,
// else an error saying what is missing.
func cachedSnapshot(repo, revision string) (string, error) {
	commit := revision
	if !commitRe.MatchString(revision) {
		b, err := os.ReadFile(filepath.Join(repo, "refs", filepath.FromSlash(revision)))
		if err != nil {
			return "", fmt.Errorf("revision %q never fetched (no refs/%s)", revision, revision)
		}
		commit = strings.TrimSpace(string(b))
		if !commitRe.MatchString(commit) {
			return "", fmt.Errorf("refs/%s holds %q, not a commit hash", revision, commit)
		}
	}
	dir := filepath.Join(repo, "snapshots", commit)
	return dir, checkModel(dir)
}

// checkModel says which file dir lacks, or nil when it holds everything the loader reads.
func checkModel(dir string) error {
	for _, name := range requiredFiles {
		if !isFile(filepath.Join(dir, name)) {
			return fmt.Errorf("%s missing from %s", name, dir)
		}
	}
	if isFile(filepath.Join(dir, "model.safetensors")) {
		return nil
	}
	index := filepath.Join(dir, indexFile)
	if !isFile(index) {
		return fmt.Errorf("neither model.safetensors nor %s in %s", indexFile, dir)
	}
	shards, err := readShards(index)
	if err != nil {
		return err
	}
	for _, s := range shards {
		if !isFile(filepath.Join(dir, s)) {
			return fmt.Errorf("shard %s missing from %s", s, dir)
		}
	}
	return nil
}

// isFile follows symlinks, so a snapshot link to a missing blob counts as absent.
func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// readShards lists the distinct shard files a safetensors index names, sorted.
func readShards(index string) ([]string, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, fmt.Errorf("%s: %v", indexFile, err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, fmt.Errorf("%s has an empty weight_map", indexFile)
	}
	var shards []string
	for _, s := range idx.WeightMap {
		if !fileRe.MatchString(s) {
			return nil, fmt.Errorf("%s names an unsafe shard file %q", indexFile, s)
		}
		shards = append(shards, s)
	}
	slices.Sort(shards)
	return slices.Compact(shards), nil
}

// lockFile takes an exclusive flock on path, the lock huggingface_hub's filelock takes too; the
// kernel drops it if the process dies, so no stale lock survives a crash.
func lockFile(ctx context.Context, path string) (unlock func(), err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	file, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	fd := int(file.Fd())
	for {
		err := syscall.Flock(fd, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() { syscall.Flock(fd, syscall.LOCK_UN); file.Close() }, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			file.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		select {
		case <-ctx.Done():
			file.Close()
			return nil, context.Cause(ctx)
		case <-time.After(lockPollInterval):
		}
	}
}

// link points dst at blob with a relative symlink, replacing any old link atomically.
func link(dst, blob string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return err
	}
	tmp := dst + "." + rand.Text() + ".tmp"
	if err := os.Symlink(rel, tmp); err != nil {
		return err
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// writeAtomic writes data to path through a temporary file, so readers never see half of it.
func writeAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + "." + rand.Text() + ".tmp"
	if err := os.WriteFile(tmp, data, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}
