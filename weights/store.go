package weights

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
)

const (
	filePerm = 0o644
	dirPerm  = 0o755
	// manifestSuffix names a version's manifest, which sits beside its directory rather than in
	// it, so the directory holds exactly the checkpoint (Manifest of it gives the same digest,
	// and model loaders see no extra file).
	manifestSuffix = ".manifest.json"
	// importPrefix and trashPrefix mark work in progress: an import being written, a version
	// being deleted. OpenStore removes whatever a crash left behind.
	importPrefix = ".import-"
	trashPrefix  = ".trash-"
	// oldChunksSuffix named a version's cached chunk sha256s (v00000007.chunks), which older
	// stores kept for serving; chunks now carry a CRC-32C computed as they are sent, so OpenStore
	// deletes such files, which nothing else would.
	oldChunksSuffix = ".chunks"
)

// Store keeps checkpoint versions under a root directory:
//
//	<root>/v00000007/                 the checkpoint's files, exactly
//	<root>/v00000007.manifest.json    its manifest (protojson), written last
//
// A version is visible once its manifest exists, which happens only after every file has been
// written, verified and synced; it never changes after that. Versions being read are counted,
// and Keep leaves them alone. One process owns a root at a time; a Store is safe for concurrent
// use by many goroutines.
type Store struct {
	root string

	mu        sync.Mutex
	versions  map[uint64]*storedVersion
	importing map[uint64]chan struct{} // closed when the import of that version ends
}

// storedVersion is a complete version and the number of Handles open on it.
type storedVersion struct {
	manifest *tsdv1.WeightManifest
	refs     int
}

// OpenStore opens (creating it if needed) the store at root. It removes leftovers of a crash
// (unfinished imports and deletions, version directories without a manifest) and the chunk-sum
// files of older stores (v00000007.chunks), now unused. A manifest that does not parse or
// validate, or whose files have other sizes than it says, is an error, since the store's
// contents can no longer be trusted.
func OpenStore(root string) (*Store, error) {
	if err := os.MkdirAll(root, dirPerm); err != nil {
		return nil, fmt.Errorf("weights: open store: %w", err)
	}
	s := &Store{root: root, versions: map[uint64]*storedVersion{}, importing: map[uint64]chan struct{}{}}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("weights: open store: %w", err)
	}
	dirs := map[uint64]string{}
	for _, e := range entries {
		name := e.Name()
		switch {
		case strings.HasPrefix(name, importPrefix) || strings.HasPrefix(name, trashPrefix), isOldChunks(name):
			if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
				return nil, fmt.Errorf("weights: open store: %w", err)
			}
		case strings.HasSuffix(name, manifestSuffix):
			if err := s.load(name); err != nil {
				return nil, err
			}
		case e.IsDir():
			if v, ok := parseVersionName(name); ok {
				dirs[v] = name
			}
		}
	}
	for v, name := range dirs {
		if _, ok := s.versions[v]; !ok {
			if err := os.RemoveAll(filepath.Join(root, name)); err != nil {
				return nil, fmt.Errorf("weights: open store: %w", err)
			}
		}
	}
	return s, nil
}

// isOldChunks reports whether name is an older store's chunk-sum file of some version.
func isOldChunks(name string) bool {
	base, ok := strings.CutSuffix(name, oldChunksSuffix)
	_, isVersion := parseVersionName(base)
	return ok && isVersion
}

// load reads one manifest file of the store and checks its files' sizes.
func (s *Store) load(name string) error {
	v, ok := parseVersionName(strings.TrimSuffix(name, manifestSuffix))
	if !ok {
		return nil // not ours
	}
	data, err := os.ReadFile(filepath.Join(s.root, name))
	if err != nil {
		return fmt.Errorf("weights: open store: %w", err)
	}
	m := &tsdv1.WeightManifest{}
	if err := protojson.Unmarshal(data, m); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrManifest, name, err)
	}
	if err := ValidateManifest(m); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if m.GetVersion() != v {
		return fmt.Errorf("%w: %s holds version %d", ErrManifest, name, m.GetVersion())
	}
	for _, f := range m.GetFiles() {
		info, err := os.Stat(filepath.Join(s.Dir(v), f.GetName()))
		if err != nil {
			return fmt.Errorf("weights: open store: version %d: %w", v, err)
		}
		if info.Size() != f.GetSize() {
			return fmt.Errorf("%w: version %d: %s has %d bytes, manifest says %d", ErrDigest, v, f.GetName(), info.Size(), f.GetSize())
		}
	}
	s.versions[v] = &storedVersion{manifest: m}
	return nil
}

// versionName is the directory name of a version.
func versionName(v uint64) string { return fmt.Sprintf("v%08d", v) }

// parseVersionName inverts versionName, accepting only its exact output.
func parseVersionName(name string) (uint64, bool) {
	if !strings.HasPrefix(name, "v") {
		return 0, false
	}
	v, err := strconv.ParseUint(name[1:], 10, 64)
	if err != nil || versionName(v) != name {
		return 0, false
	}
	return v, true
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

// Dir is where version's files are (or would be).
func (s *Store) Dir(version uint64) string { return filepath.Join(s.root, versionName(version)) }

func (s *Store) manifestPath(version uint64) string {
	return filepath.Join(s.root, versionName(version)+manifestSuffix)
}

// Has reports whether version is complete in the store.
func (s *Store) Has(version uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.versions[version]
	return ok
}

// Get returns a copy of version's manifest, or ErrNotFound.
func (s *Store) Get(version uint64) (*tsdv1.WeightManifest, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.versions[version]
	if !ok {
		return nil, fmt.Errorf("%w: version %d", ErrNotFound, version)
	}
	return proto.CloneOf(e.manifest), nil
}

// Versions lists the complete versions, oldest first.
func (s *Store) Versions() []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.versions))
}

// Latest returns a copy of the manifest of the highest version, or ErrNotFound if the store is
// empty.
func (s *Store) Latest() (*tsdv1.WeightManifest, error) {
	vs := s.Versions()
	if len(vs) == 0 {
		return nil, fmt.Errorf("%w: the store is empty", ErrNotFound)
	}
	return s.Get(vs[len(vs)-1])
}

// Handle holds a version open: until Release, Keep will not delete it. Manifest and Dir must not
// be modified.
type Handle struct {
	Manifest *tsdv1.WeightManifest
	Dir      string

	store   *Store
	version uint64
	once    sync.Once
}

// Acquire holds version open for reading, or returns ErrNotFound.
func (s *Store) Acquire(version uint64) (*Handle, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.versions[version]
	if !ok {
		return nil, fmt.Errorf("%w: version %d", ErrNotFound, version)
	}
	e.refs++
	return &Handle{Manifest: proto.CloneOf(e.manifest), Dir: s.Dir(version), store: s, version: version}, nil
}

// Release lets Keep delete the version again; calls after the first do nothing.
func (h *Handle) Release() {
	h.once.Do(func() {
		h.store.mu.Lock()
		defer h.store.mu.Unlock()
		h.store.versions[h.version].refs--
	})
}

// Keep deletes every version but the n highest, except versions held by a Handle (a Server
// holds the version it is streaming). It returns the versions it deleted.
func (s *Store) Keep(n int) ([]uint64, error) {
	if n < 0 {
		return nil, fmt.Errorf("%w: keep %d versions", ErrArgument, n)
	}
	removed, trash, err := s.unlinkOld(n)
	for _, dir := range trash {
		err = errors.Join(err, os.RemoveAll(dir))
	}
	if err != nil {
		return removed, fmt.Errorf("weights: keep %d: %w", n, err)
	}
	return removed, nil
}

// unlinkOld makes the versions Keep deletes invisible (manifest first, so a crash leaves only an
// orphan directory that OpenStore removes) and moves their directories aside for deletion
// outside the lock.
func (s *Store) unlinkOld(n int) (removed []uint64, trash []string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs := slices.Sorted(maps.Keys(s.versions))
	for i, v := range slices.Backward(vs) {
		if len(vs)-1-i < n || s.versions[v].refs > 0 {
			continue
		}
		if err := os.Remove(s.manifestPath(v)); err != nil {
			return removed, trash, err
		}
		delete(s.versions, v)
		removed = append(removed, v)
		dir, err := os.MkdirTemp(s.root, trashPrefix)
		if err != nil {
			return removed, trash, err
		}
		trash = append(trash, dir)
		if err := os.Rename(s.Dir(v), filepath.Join(dir, versionName(v))); err != nil {
			return removed, trash, err
		}
	}
	return removed, trash, nil
}

// Verify rehashes version's files and checks them against its manifest; it catches what went
// wrong on disk since the version was written.
func (s *Store) Verify(version uint64) error {
	h, err := s.Acquire(version)
	if err != nil {
		return err
	}
	defer h.Release()
	got, err := Manifest(h.Dir, version)
	if err != nil {
		return err
	}
	if got.GetSha256() != h.Manifest.GetSha256() {
		return fmt.Errorf("%w: version %d on disk has digest %s, manifest %s", ErrDigest, version, got.GetSha256(), h.Manifest.GetSha256())
	}
	return nil
}

// Put copies the checkpoint in srcDir into the store as version, hashing while it copies; the
// manifest it returns describes the copy. Symlinks in srcDir are followed wherever they lead
// (a Hugging Face cache snapshot works); the store itself holds regular files only. Putting a
// version again with the same content returns the stored manifest; different content is
// ErrConflict.
func (s *Store) Put(version uint64, srcDir string) (*tsdv1.WeightManifest, error) {
	files, err := checkpointFiles(srcDir, linksAnywhere)
	if err != nil {
		return nil, err
	}
	imp, existing, err := s.beginImport(context.Background(), version)
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return samePut(version, srcDir, files, existing)
	}
	defer imp.abort()
	out := make([]*tsdv1.WeightFile, 0, len(files))
	buf := make([]byte, ioBufferBytes)
	for _, f := range files {
		size, sum, err := copyFile(f.path, filepath.Join(imp.dir, f.name), buf)
		if err != nil {
			return nil, fmt.Errorf("weights: put version %d: %w", version, err)
		}
		out = append(out, &tsdv1.WeightFile{Name: f.name, Size: size, Blake3: sum})
	}
	return imp.commit(&tsdv1.WeightManifest{Version: version, Sha256: Digest(out), Files: out})
}

// samePut answers a Put of a version the store already has.
func samePut(version uint64, srcDir string, files []checkpointFile, existing *tsdv1.WeightManifest) (*tsdv1.WeightManifest, error) {
	m, err := hashFiles(files, version)
	if err != nil {
		return nil, err
	}
	if m.GetSha256() != existing.GetSha256() {
		return nil, fmt.Errorf("%w: version %d is %s, %s is %s", ErrConflict, version, existing.GetSha256(), srcDir, m.GetSha256())
	}
	return existing, nil
}
