package weights_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"tsd/weights"
)

func TestStorePutGet(t *testing.T) {
	files := randomFiles(1, 5000)
	src := writeCheckpoint(t, files)
	s := newStore(t)
	if _, err := s.Latest(); !errors.Is(err, weights.ErrNotFound) {
		t.Errorf("Latest of an empty store: %v, want ErrNotFound", err)
	}
	m, err := s.Put(7, src)
	if err != nil {
		t.Fatal(err)
	}
	want, err := weights.Manifest(src, 7)
	if err != nil {
		t.Fatal(err)
	}
	if m.GetSha256() != want.GetSha256() || m.GetVersion() != 7 {
		t.Errorf("Put gave %s v%d, Manifest of the source %s", m.GetSha256(), m.GetVersion(), want.GetSha256())
	}
	sameFiles(t, s.Dir(7), files) // the directory is the checkpoint, nothing more
	if onDisk, err := weights.Manifest(s.Dir(7), 7); err != nil || onDisk.GetSha256() != m.GetSha256() {
		t.Errorf("Manifest of the stored directory: %v %v", onDisk, err)
	}
	if !s.Has(7) || s.Has(6) {
		t.Error("Has")
	}
	if got, err := s.Get(7); err != nil || got.GetSha256() != m.GetSha256() {
		t.Errorf("Get: %v %v", got, err)
	}
	if _, err := s.Get(6); !errors.Is(err, weights.ErrNotFound) {
		t.Errorf("Get(6): %v, want ErrNotFound", err)
	}
	if err := s.Verify(7); err != nil {
		t.Errorf("Verify: %v", err)
	}

	// Putting the same content again is a no-op; other content under the same version is not.
	if again, err := s.Put(7, src); err != nil || again.GetSha256() != m.GetSha256() {
		t.Errorf("second Put: %v %v", again, err)
	}
	if _, err := s.Put(7, writeCheckpoint(t, randomFiles(2, 5000))); !errors.Is(err, weights.ErrConflict) {
		t.Errorf("Put of other content as v7: %v, want ErrConflict", err)
	}
	if _, err := s.Put(8, writeCheckpoint(t, map[string][]byte{})); !errors.Is(err, weights.ErrCheckpoint) {
		t.Errorf("Put of an empty directory: %v, want ErrCheckpoint", err)
	}
	if s.Has(8) {
		t.Error("a failed Put left a version")
	}
}

func TestStoreLatestVersions(t *testing.T) {
	s := newStore(t)
	src := writeCheckpoint(t, randomFiles(1, 100))
	for _, v := range []uint64{3, 0, 12, 5} {
		if _, err := s.Put(v, src); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.Versions(); !slices.Equal(got, []uint64{0, 3, 5, 12}) {
		t.Errorf("Versions %v", got)
	}
	if m, err := s.Latest(); err != nil || m.GetVersion() != 12 {
		t.Errorf("Latest: %v %v", m, err)
	}
}

// TestStoreReopen finds complete versions again and removes what a crash left behind, and the
// chunk-sum files older stores kept beside their versions.
func TestStoreReopen(t *testing.T) {
	s := newStore(t)
	files := randomFiles(3, 1000)
	m, err := s.Put(1, writeCheckpoint(t, files))
	if err != nil {
		t.Fatal(err)
	}
	root := s.Root()
	leftovers := []string{".import-v00000002-123", ".trash-456", "v00000009"} // dirs without manifest
	for _, d := range leftovers {
		mkdir(t, filepath.Join(root, d, "x"))
	}
	writeFile(t, filepath.Join(root, ".import-789.manifest.json"), "{")
	writeFile(t, filepath.Join(root, "v00000001.chunks"), "tsd-chunks") // an older store's
	writeFile(t, filepath.Join(root, "v00000003.chunks"), "tsd-chunks") // of no version
	writeFile(t, filepath.Join(root, "README"), "not the store's")      // left alone
	writeFile(t, filepath.Join(root, "x.chunks"), "not the store's")    // left alone

	s2, err := weights.OpenStore(root)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s2.Get(1); err != nil || got.GetSha256() != m.GetSha256() {
		t.Errorf("reopened v1: %v %v", got, err)
	}
	entries, _ := os.ReadDir(root)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"README", "v00000001", "v00000001.manifest.json", "x.chunks"}; !slices.Equal(names, want) {
		t.Errorf("after reopen the root holds %v, want %v", names, want)
	}
}

func TestStoreReopenRejectsDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, s *weights.Store)
		want   error
	}{
		{"manifest not json", func(t *testing.T, s *weights.Store) {
			writeFile(t, filepath.Join(s.Root(), "v00000001.manifest.json"), "{")
		}, weights.ErrManifest},
		{"manifest of another version", func(t *testing.T, s *weights.Store) {
			data, _ := os.ReadFile(filepath.Join(s.Root(), "v00000001.manifest.json"))
			writeFile(t, filepath.Join(s.Root(), "v00000002.manifest.json"), string(data))
			mkdir(t, filepath.Join(s.Root(), "v00000002"))
		}, weights.ErrManifest},
		{"manifest of an earlier tsd (files named by sha256)", func(t *testing.T, s *weights.Store) {
			path := filepath.Join(s.Root(), "v00000001.manifest.json")
			data, _ := os.ReadFile(path)
			writeFile(t, path, strings.ReplaceAll(string(data), `"blake3"`, `"sha256"`))
		}, weights.ErrManifest},
		{"file truncated", func(t *testing.T, s *weights.Store) {
			if err := os.Truncate(filepath.Join(s.Dir(1), "model.safetensors"), 10); err != nil {
				t.Fatal(err)
			}
		}, weights.ErrDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := storeWith(t, 1, randomFiles(4, 1000))
			tt.damage(t, s)
			if _, err := weights.OpenStore(s.Root()); !errors.Is(err, tt.want) {
				t.Errorf("OpenStore: %v, want %v", err, tt.want)
			}
		})
	}
}

// TestStoreVerify notices a flipped bit that keeps the size.
func TestStoreVerify(t *testing.T) {
	s, _ := storeWith(t, 1, randomFiles(5, 1000))
	path := filepath.Join(s.Dir(1), "model.safetensors")
	data, _ := os.ReadFile(path)
	data[500] ^= 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Verify(1); !errors.Is(err, weights.ErrDigest) {
		t.Errorf("Verify: %v, want ErrDigest", err)
	}
	if err := s.Verify(2); !errors.Is(err, weights.ErrNotFound) {
		t.Errorf("Verify(2): %v, want ErrNotFound", err)
	}
}

func TestStoreKeep(t *testing.T) {
	s := newStore(t)
	src := writeCheckpoint(t, randomFiles(6, 100))
	for v := uint64(1); v <= 5; v++ {
		if _, err := s.Put(v, src); err != nil {
			t.Fatal(err)
		}
	}
	held, err := s.Acquire(1)
	if err != nil {
		t.Fatal(err)
	}
	removed, err := s.Keep(2)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []uint64{3, 2}) || !slices.Equal(s.Versions(), []uint64{1, 4, 5}) {
		t.Errorf("Keep(2) with v1 held removed %v, left %v", removed, s.Versions())
	}
	sameFiles(t, held.Dir, randomFiles(6, 100)) // still readable
	held.Release()
	held.Release() // twice is harmless
	if removed, err := s.Keep(0); err != nil || !slices.Equal(removed, []uint64{5, 4, 1}) {
		t.Errorf("Keep(0): %v %v", removed, err)
	}
	entries, _ := os.ReadDir(s.Root())
	if len(entries) != 0 {
		t.Errorf("Keep(0) left %d entries", len(entries))
	}
	if _, err := s.Keep(-1); !errors.Is(err, weights.ErrArgument) {
		t.Errorf("Keep(-1): %v, want ErrArgument", err)
	}
	if _, err := s.Acquire(5); !errors.Is(err, weights.ErrNotFound) {
		t.Errorf("Acquire of a deleted version: %v", err)
	}
}

// TestStorePutHubSnapshot seeds a store from a Hugging Face cache snapshot, whose files are
// symlinks to ../../blobs: Put follows them and stores regular files, while Manifest of the
// snapshot refuses the links that leave it.
func TestStorePutHubSnapshot(t *testing.T) {
	repo := t.TempDir()
	mkdir(t, filepath.Join(repo, "blobs"))
	snapshot := filepath.Join(repo, "snapshots", "989aa79")
	mkdir(t, snapshot)
	files := randomFiles(7, 1000)
	for name, data := range files {
		blob := sha256Hex(data)
		writeFile(t, filepath.Join(repo, "blobs", blob), string(data))
		symlink(t, filepath.Join("..", "..", "blobs", blob), filepath.Join(snapshot, name))
	}
	if _, err := weights.Manifest(snapshot, 0); !errors.Is(err, weights.ErrCheckpoint) {
		t.Errorf("Manifest of a snapshot: %v, want ErrCheckpoint", err)
	}
	s := newStore(t)
	m, err := s.Put(0, snapshot)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, s.Dir(0), files)
	entries, _ := os.ReadDir(s.Dir(0))
	for _, e := range entries {
		if !e.Type().IsRegular() {
			t.Errorf("%s in the store is %v", e.Name(), e.Type())
		}
	}
	if again, err := s.Put(0, snapshot); err != nil || again.GetSha256() != m.GetSha256() {
		t.Errorf("Put again: %v %v", again, err)
	}
}
