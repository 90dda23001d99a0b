package weights

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"

	"lukechampine.com/blake3"

	tsdv1 "tsd/proto/tsd/v1"
)

const (
	// maxNameBytes is the longest file name a manifest may carry: the limit of common file
	// systems, so any accepted name can be created.
	maxNameBytes = 255
	// ioBufferBytes is the buffer for hashing and copying: large enough that syscalls do not
	// dominate, small enough to keep per-stream memory modest.
	ioBufferBytes = 1 << 20
)

// Manifest hashes the checkpoint in dir and names it version. The directory must be flat: regular
// files only (or symlinks to regular files inside dir), no subdirectories, every name acceptable
// to ValidateManifest. Files are read as streams, so a multi-gigabyte safetensors file costs one
// buffer of memory.
func Manifest(dir string, version uint64) (*tsdv1.WeightManifest, error) {
	files, err := checkpointFiles(dir, linksInside)
	if err != nil {
		return nil, err
	}
	return hashFiles(files, version)
}

// hashFiles computes the manifest of listed checkpoint files.
func hashFiles(files []checkpointFile, version uint64) (*tsdv1.WeightManifest, error) {
	out := make([]*tsdv1.WeightFile, 0, len(files))
	buf := make([]byte, ioBufferBytes)
	for _, f := range files {
		size, sum, err := hashFile(f.path, buf)
		if err != nil {
			return nil, err
		}
		out = append(out, &tsdv1.WeightFile{Name: f.name, Size: size, Blake3: sum})
	}
	return &tsdv1.WeightManifest{Version: version, Sha256: Digest(out), Files: out}, nil
}

// newFileDigest returns the hash that names a checkpoint's files: 256-bit BLAKE3. Every fetched
// byte goes through it, and on CPUs without SHA extensions sha256 (~0.3 GB/s per core on our
// Xeons) would cap a fetch below what the network and disk carry; BLAKE3 runs at ~2 GB/s there.
// The checkpoint digest, which the coordinator records, stays a sha256 over the file list.
func newFileDigest() hash.Hash { return blake3.New(32, nil) }

// Digest is the checkpoint digest of files: the hex sha256 of "<name> <size> <blake3>\n" for each
// file in byte-wise name order. Names never hold a newline (ValidateManifest refuses them), and
// size and digest hold no space, so the lines parse back unambiguously.
func Digest(files []*tsdv1.WeightFile) string {
	sorted := slices.Clone(files)
	slices.SortFunc(sorted, func(a, b *tsdv1.WeightFile) int { return cmp.Compare(a.GetName(), b.GetName()) })
	h := sha256.New()
	for _, f := range sorted {
		fmt.Fprintf(h, "%s %d %s\n", f.GetName(), f.GetSize(), f.GetBlake3())
	}
	return hex.EncodeToString(h.Sum(nil))
}

// ValidateManifest checks a manifest received from elsewhere before any of it touches the disk:
// at least one file; every name a plain file name (see checkName); names strictly increasing,
// hence unique; sizes non-negative; every BLAKE3 64 lowercase hex digits; and the digest equal
// to Digest of the files. A manifest that names its files by sha256 comes from an earlier tsd
// and is refused as such.
func ValidateManifest(m *tsdv1.WeightManifest) error {
	if m == nil || len(m.GetFiles()) == 0 {
		return fmt.Errorf("%w: no files", ErrManifest)
	}
	for i, f := range m.GetFiles() {
		if err := checkName(f.GetName()); err != nil {
			return fmt.Errorf("%w: file %d: %w", ErrManifest, i, err)
		}
		if i > 0 && m.Files[i-1].GetName() >= f.GetName() {
			return fmt.Errorf("%w: %q follows %q: names must be unique and sorted", ErrManifest, f.GetName(), m.Files[i-1].GetName())
		}
		if f.GetSize() < 0 {
			return fmt.Errorf("%w: %q has size %d", ErrManifest, f.GetName(), f.GetSize())
		}
		if f.GetSha256() != "" {
			return fmt.Errorf("%w: %q is named by sha256, as tsd did before it named files by BLAKE3: upgrade learner and actors together (docs/weights.md)", ErrManifest, f.GetName())
		}
		if !isHexDigest(f.GetBlake3()) {
			return fmt.Errorf("%w: %q has blake3 %q", ErrManifest, f.GetName(), f.GetBlake3())
		}
	}
	if got := Digest(m.GetFiles()); got != m.GetSha256() {
		return fmt.Errorf("%w: digest %q, files give %q", ErrManifest, m.GetSha256(), got)
	}
	return nil
}

// checkName accepts a name that, joined to a directory, stays a file of that directory on every
// platform we run on: not empty, ".", or ".."; no path separator of any OS; no control character
// (a newline would also break the digest's line format); valid UTF-8; at most maxNameBytes.
func checkName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("name %q is not a file name", name)
	case len(name) > maxNameBytes:
		return fmt.Errorf("name of %d bytes is longer than %d", len(name), maxNameBytes)
	case !utf8.ValidString(name):
		return fmt.Errorf("name %q is not UTF-8", name)
	case strings.ContainsAny(name, `/\:`):
		return fmt.Errorf("name %q contains a path separator", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("name %q contains a control character", name)
	}
	return nil
}

// isHexDigest reports whether s is a 256-bit digest in the form this package writes: 64 lowercase
// hex digits.
func isHexDigest(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// linkPolicy says where a checkpoint directory's symlinks may lead.
type linkPolicy int

const (
	// linksInside accepts only symlinks to files of the directory itself: a manifest computed
	// for serving must not reach files the checkpoint does not own.
	linksInside linkPolicy = iota
	// linksAnywhere follows symlinks wherever they lead. Store.Put uses it: it copies the bytes,
	// so the store holds regular files only, and a Hugging Face cache snapshot (symlinks into
	// ../../blobs) can seed a store directly.
	linksAnywhere
)

// checkpointFile is one file of a checkpoint directory: its name there and the path to read,
// which differs from dir/name when the entry is a symlink.
type checkpointFile struct {
	name, path string
}

// checkpointFiles lists the files of the flat checkpoint directory dir in name order.
func checkpointFiles(dir string, links linkPolicy) ([]checkpointFile, error) {
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	if root, err = filepath.Abs(root); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCheckpoint, err)
	}
	var files []checkpointFile
	for _, e := range entries { // ReadDir sorts by name, byte-wise
		f, err := checkpointEntry(root, e, links)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrCheckpoint, dir, err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("%w: %s holds no files", ErrCheckpoint, dir)
	}
	return files, nil
}

// checkpointEntry accepts one directory entry of root as a checkpoint file.
func checkpointEntry(root string, e os.DirEntry, links linkPolicy) (checkpointFile, error) {
	name := e.Name()
	if err := checkName(name); err != nil {
		return checkpointFile{}, err
	}
	path := filepath.Join(root, name)
	switch mode := e.Type(); {
	case mode.IsRegular():
		return checkpointFile{name: name, path: path}, nil
	case mode&os.ModeSymlink != 0:
		return symlinkEntry(root, name, path, links)
	case mode.IsDir():
		return checkpointFile{}, fmt.Errorf("%q is a subdirectory", name)
	default:
		return checkpointFile{}, fmt.Errorf("%q is not a regular file (%v)", name, mode)
	}
}

// symlinkEntry accepts a symlink that resolves to a regular file, inside root unless links
// says anywhere.
func symlinkEntry(root, name, path string, links linkPolicy) (checkpointFile, error) {
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return checkpointFile{}, err
	}
	rel, err := filepath.Rel(root, target)
	if links == linksInside && (err != nil || !filepath.IsLocal(rel)) {
		return checkpointFile{}, fmt.Errorf("symlink %q leads out of the directory to %s", name, target)
	}
	info, err := os.Stat(target)
	if err != nil {
		return checkpointFile{}, err
	}
	if !info.Mode().IsRegular() {
		return checkpointFile{}, fmt.Errorf("symlink %q leads to a non-regular file", name)
	}
	return checkpointFile{name: name, path: target}, nil
}

// hashFile returns the size and hex BLAKE3 of the file at path, reading it through buf.
func hashFile(path string, buf []byte) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := newFileDigest()
	n, err := io.CopyBuffer(h, onlyReader{f}, buf)
	if err != nil {
		return 0, "", fmt.Errorf("hash %s: %w", path, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// copyFile copies src to a new file dst, hashing the bytes on the way, and syncs dst. It returns
// the size and hex BLAKE3 of what it wrote.
func copyFile(src, dst string, buf []byte) (int64, string, error) {
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return 0, "", err
	}
	h := newFileDigest()
	n, err := io.CopyBuffer(io.MultiWriter(out, h), onlyReader{in}, buf)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, "", fmt.Errorf("copy %s: %w", src, err)
	}
	return n, hex.EncodeToString(h.Sum(nil)), nil
}

// onlyReader hides an *os.File's WriteTo, which would otherwise make io.CopyBuffer ignore the
// buffer it is given and read in 32 KiB pieces.
type onlyReader struct{ io.Reader }
