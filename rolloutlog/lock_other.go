//go:build !unix

package rolloutlog

import (
	"os"
	"path/filepath"
)

// lockDir only creates dir/LOCK where flock does not exist; one Open per directory is then the
// caller's duty alone.
func lockDir(dir string) (*os.File, error) {
	return os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
}
