package weights_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/weights"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestManifestGolden pins the manifest of testdata/ckpt, digest included.
func TestManifestGolden(t *testing.T) {
	m, err := weights.Manifest("testdata/ckpt", 3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := protojson.MarshalOptions{Multiline: true, Indent: "  "}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "ckpt.manifest.json")
	if *update {
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	wantM := &tsdv1.WeightManifest{}
	if err := protojson.Unmarshal(want, wantM); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(m, wantM) {
		t.Errorf("manifest of testdata/ckpt:\n%s\nwant (%s):\n%s", got, golden, want)
	}
}

// TestDigestSpec spells the digest out as the proto defines it, independently of the package.
func TestDigestSpec(t *testing.T) {
	files := map[string][]byte{"tokenizer.json": []byte("tok"), "config.json": []byte("{}"), "b": {}}
	m, err := weights.Manifest(writeCheckpoint(t, files), 1)
	if err != nil {
		t.Fatal(err)
	}
	// BLAKE3 of no bytes, from the BLAKE3 specification's test vectors: the library is the one
	// the reference describes.
	if got, want := m.Files[0].GetBlake3(), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"; got != want {
		t.Errorf("blake3 of the empty file b: %s, want %s", got, want)
	}
	var lines strings.Builder
	for _, name := range []string{"b", "config.json", "tokenizer.json"} {
		fmt.Fprintf(&lines, "%s %d %s\n", name, len(files[name]), blake3Hex(files[name]))
	}
	want := sha256.Sum256([]byte(lines.String()))
	if m.GetSha256() != hex.EncodeToString(want[:]) {
		t.Errorf("digest %s, want %x over\n%s", m.GetSha256(), want, lines.String())
	}
	if err := weights.ValidateManifest(m); err != nil {
		t.Errorf("ValidateManifest of a computed manifest: %v", err)
	}
	// Digest does not depend on the order it is given the files in.
	reversed := []*tsdv1.WeightFile{m.Files[2], m.Files[1], m.Files[0]}
	if weights.Digest(reversed) != m.GetSha256() {
		t.Error("Digest depends on the order of its argument")
	}
}

func TestManifestRejects(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, dir string)
	}{
		{"empty directory", func(t *testing.T, dir string) {}},
		{"subdirectory", func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "original")) }},
		{"symlink out of the directory", func(t *testing.T, dir string) {
			outside := filepath.Join(t.TempDir(), "secret")
			writeFile(t, outside, "x")
			symlink(t, outside, filepath.Join(dir, "model.safetensors"))
		}},
		{"relative symlink out", func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(filepath.Dir(dir), "sibling"), "x")
			symlink(t, "../sibling", filepath.Join(dir, "model.safetensors"))
		}},
		{"dangling symlink", func(t *testing.T, dir string) { symlink(t, "nowhere", filepath.Join(dir, "a")) }},
		{"fifo", func(t *testing.T, dir string) {
			if err := syscall.Mkfifo(filepath.Join(dir, "pipe"), 0o644); err != nil {
				t.Skip("no fifo:", err)
			}
		}},
		{"newline in a name", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "a\nb"), "x") }},
		{"backslash in a name", func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, `a\b`), "x") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "ckpt")
			mkdir(t, dir)
			writeFile(t, filepath.Join(dir, "config.json"), "{}")
			if tt.name == "empty directory" {
				os.Remove(filepath.Join(dir, "config.json"))
			}
			tt.setup(t, dir)
			if _, err := weights.Manifest(dir, 1); !errors.Is(err, weights.ErrCheckpoint) {
				t.Errorf("Manifest: %v, want ErrCheckpoint", err)
			}
		})
	}
	if _, err := weights.Manifest(filepath.Join(t.TempDir(), "missing"), 1); !errors.Is(err, weights.ErrCheckpoint) {
		t.Errorf("missing directory: %v, want ErrCheckpoint", err)
	}
}

// TestManifestSymlinkInside accepts a link to a file of the same directory and hashes the target.
func TestManifestSymlinkInside(t *testing.T) {
	dir := writeCheckpoint(t, map[string][]byte{"blob": []byte("weights")})
	symlink(t, "blob", filepath.Join(dir, "model.safetensors"))
	m, err := weights.Manifest(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Files) != 2 || m.Files[0].Blake3 != m.Files[1].Blake3 || m.Files[1].Name != "model.safetensors" {
		t.Errorf("files %v", m.Files)
	}
}

// goodManifest is a valid manifest with the given names (sizes 1, 2, ...).
func goodManifest(names ...string) *tsdv1.WeightManifest {
	m := &tsdv1.WeightManifest{Version: 1}
	for i, n := range names {
		m.Files = append(m.Files, &tsdv1.WeightFile{Name: n, Size: int64(i + 1), Blake3: blake3Hex([]byte(n))})
	}
	m.Sha256 = weights.Digest(m.Files)
	return m
}

// nameBySHA256 names file 0 by its sha256, as tsd did before it used BLAKE3.
func nameBySHA256(m *tsdv1.WeightManifest) {
	m.Files[0].Sha256 = sha256Hex([]byte(m.Files[0].Name))
}

func TestValidateManifest(t *testing.T) {
	tests := []struct {
		name   string
		m      *tsdv1.WeightManifest
		change func(m *tsdv1.WeightManifest)
	}{
		{"nil", nil, nil},
		{"no files", goodManifest(), nil},
		{"parent", goodManifest("../x"), nil},
		{"dot dot", goodManifest(".."), nil},
		{"dot", goodManifest("."), nil},
		{"absolute", goodManifest("/etc/passwd"), nil},
		{"subdirectory", goodManifest("a/b"), nil},
		{"windows separator", goodManifest(`..\x`), nil},
		{"drive", goodManifest("c:x"), nil},
		{"empty name", goodManifest(""), nil},
		{"newline", goodManifest("a\nb"), nil},
		{"nul", goodManifest("a\x00b"), nil},
		{"not utf-8", goodManifest("a\xffb"), nil},
		{"too long", goodManifest(strings.Repeat("a", 256)), nil},
		{"duplicate", goodManifest("a", "a"), nil},
		{"unsorted", goodManifest("b", "a"), nil},
		{"negative size", goodManifest("a"), func(m *tsdv1.WeightManifest) { m.Files[0].Size = -1 }},
		{"uppercase digest", goodManifest("a"), func(m *tsdv1.WeightManifest) { m.Files[0].Blake3 = strings.ToUpper(m.Files[0].Blake3) }},
		{"short digest", goodManifest("a"), func(m *tsdv1.WeightManifest) { m.Files[0].Blake3 = "abc" }},
		{"no digest", goodManifest("a"), func(m *tsdv1.WeightManifest) { m.Files[0].Blake3 = "" }},
		{"named by sha256 (earlier tsd)", goodManifest("a"), func(m *tsdv1.WeightManifest) { nameBySHA256(m); m.Files[0].Blake3 = "" }},
		{"named by both", goodManifest("a"), nameBySHA256},
		{"wrong digest", goodManifest("a"), func(m *tsdv1.WeightManifest) { m.Sha256 = sha256Hex([]byte("other")) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.change != nil {
				tt.change(tt.m)
				if tt.name != "wrong digest" {
					tt.m.Sha256 = weights.Digest(tt.m.Files) // only the file entry is wrong
				}
			}
			if err := weights.ValidateManifest(tt.m); !errors.Is(err, weights.ErrManifest) {
				t.Errorf("ValidateManifest: %v, want ErrManifest", err)
			}
		})
	}
	if err := weights.ValidateManifest(goodManifest(".gitattributes", "config.json", "model-00001-of-00002.safetensors", "tokenizer.json")); err != nil {
		t.Errorf("a normal manifest: %v", err)
	}
}

// FuzzValidateManifest checks the property the store relies on: an accepted name is a plain file
// name, so joining it to a directory stays in that directory.
func FuzzValidateManifest(f *testing.F) {
	for _, s := range []string{"config.json", "../x", "/abs", "a/b", "..", "", "a\nb", `a\b`} {
		f.Add(s, "tokenizer.json", int64(3))
	}
	f.Fuzz(func(t *testing.T, a, b string, size int64) {
		m := &tsdv1.WeightManifest{Files: []*tsdv1.WeightFile{
			{Name: a, Size: size, Blake3: blake3Hex([]byte(a))},
			{Name: b, Size: 1, Blake3: blake3Hex([]byte(b))},
		}}
		m.Sha256 = weights.Digest(m.Files)
		if weights.ValidateManifest(m) != nil {
			return
		}
		for _, name := range []string{a, b} {
			if !filepath.IsLocal(name) || filepath.Base(name) != name || strings.ContainsAny(name, "\n\\/") {
				t.Errorf("accepted name %q escapes its directory", name)
			}
		}
		if a >= b || size < 0 {
			t.Errorf("accepted unsorted or negative: %q %q %d", a, b, size)
		}
	})
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func symlink(t *testing.T, target, link string) {
	t.Helper()
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
}
