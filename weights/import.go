package weights

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	tsdv1 "tsd/proto/tsd/v1"
)

// importSlot is the right to write one version into a store: at most one exists per version at
// a time, so concurrent fetches of a version download it once. Files go into dir, a temporary
// directory under the store's root, until commit renames it into place.
type importSlot struct {
	store   *Store
	version uint64
	dir     string
	ended   bool
}

// beginImport returns a slot for version, or the version's manifest if the store already has it.
// If another import of the version is under way it waits for that one to end (or ctx), then
// looks again: the other import may have failed.
func (s *Store) beginImport(ctx context.Context, version uint64) (*importSlot, *tsdv1.WeightManifest, error) {
	for {
		s.mu.Lock()
		if e, ok := s.versions[version]; ok {
			s.mu.Unlock()
			return nil, e.manifest, nil
		}
		busy, ok := s.importing[version]
		if !ok {
			s.importing[version] = make(chan struct{})
			s.mu.Unlock()
			return s.newSlot(version)
		}
		s.mu.Unlock()
		select {
		case <-busy:
		case <-ctx.Done():
			return nil, nil, ctx.Err()
		}
	}
}

// newSlot makes the temporary directory of a slot whose import has been registered.
func (s *Store) newSlot(version uint64) (*importSlot, *tsdv1.WeightManifest, error) {
	dir, err := os.MkdirTemp(s.root, importPrefix+versionName(version)+"-")
	if err != nil {
		s.endImport(version)
		return nil, nil, fmt.Errorf("weights: import version %d: %w", version, err)
	}
	return &importSlot{store: s, version: version, dir: dir}, nil, nil
}

// endImport unregisters the import of version and wakes whoever waits for it.
func (s *Store) endImport(version uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.importing[version])
	delete(s.importing, version)
}

// abort drops the slot's files and frees the slot; after commit it does nothing.
func (imp *importSlot) abort() {
	if imp.ended {
		return
	}
	imp.ended = true
	os.RemoveAll(imp.dir)
	imp.store.endImport(imp.version)
}

// commit makes the slot's files the version: sync the directory, rename it into place, then write
// the manifest beside it. m must describe the files exactly; the callers computed it from the
// bytes they wrote. On error nothing becomes visible.
func (imp *importSlot) commit(m *tsdv1.WeightManifest) (*tsdv1.WeightManifest, error) {
	defer imp.abort()
	s, v := imp.store, imp.version
	final := s.Dir(v)
	err := syncDir(imp.dir)
	if err == nil {
		err = os.RemoveAll(final) // only an orphan of a crash can be here
	}
	if err == nil {
		err = os.Rename(imp.dir, final)
	}
	if err == nil {
		err = syncDir(s.root) // the directory must be durable before the manifest names it
	}
	if err == nil {
		err = writeManifestFile(s, m)
	}
	if err != nil {
		os.RemoveAll(final)
		return nil, fmt.Errorf("weights: commit version %d: %w", v, err)
	}
	s.mu.Lock()
	s.versions[v] = &storedVersion{manifest: m}
	s.mu.Unlock()
	return m, nil
}

// writeManifestFile writes m beside its version's directory.
func writeManifestFile(s *Store, m *tsdv1.WeightManifest) error {
	data, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		return err
	}
	return writeFileAtomic(s.root, s.manifestPath(m.GetVersion()), data)
}

// writeFileAtomic writes data to path in the store's root atomically: a synced temporary file
// renamed into place, then the root synced so the rename survives a crash.
func writeFileAtomic(root, path string, data []byte) error {
	f, err := os.CreateTemp(root, importPrefix+"*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), filePerm)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err == nil {
		err = syncDir(root)
	}
	return err
}

// syncDir flushes a directory's entries (new names, renames) to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// createIn creates the file name in the slot's directory for writing. name has passed
// checkName, so the path stays inside the directory.
func (imp *importSlot) createIn(name string) (*os.File, error) {
	return os.OpenFile(filepath.Join(imp.dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, filePerm)
}
