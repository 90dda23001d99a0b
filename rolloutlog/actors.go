package rolloutlog

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

const actorsFile = "actors"

// actorsState is what TruncateBefore must keep of the segments it deletes: each actor's highest
// seq, so that the dedup never forgets an actor, and the first index kept, so that a missing
// segment is noticed. It is stored as one record framed like a segment's, with a JSON payload
// a person can read.
type actorsState struct {
	FirstIndex uint64            `json:"first_index"`
	Actors     map[string]uint64 `json:"actors"`
}

// writeActors replaces the actors file atomically: temp file, fsync, rename, fsync directory.
func writeActors(dir string, st actorsState, noSync bool) error {
	payload, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, actorsFile+".tmp")
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	_, err = f.Write(sealFrame(append(make([]byte, headerBytes), payload...)))
	if err == nil && !noSync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, filepath.Join(dir, actorsFile))
	}
	if err == nil {
		err = syncDir(dir, noSync)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", filepath.Join(dir, actorsFile), err)
	}
	return nil
}

// readActors loads the actors file; found is false when TruncateBefore never ran.
func readActors(dir string) (st actorsState, found bool, err error) {
	path := filepath.Join(dir, actorsFile)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return st, false, nil
	}
	if err != nil {
		return st, false, err
	}
	// Written by rename, so it is whole or absent: any damage is corruption, never a torn tail.
	if n, problem := checkFrame(data); problem != "" || n != len(data) {
		if problem == "" {
			problem = fmt.Sprintf("%d bytes after the record", len(data)-n)
		}
		return st, false, fmt.Errorf("%w: %s: %s", ErrCorrupt, path, problem)
	}
	if err := json.Unmarshal(data[headerBytes:], &st); err != nil {
		return st, false, fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	if st.FirstIndex == 0 {
		return st, false, fmt.Errorf("%w: %s: first_index 0", ErrCorrupt, path)
	}
	for actor, seq := range st.Actors {
		if actor == "" || seq == 0 {
			return st, false, fmt.Errorf("%w: %s: entry %q: %d", ErrCorrupt, path, actor, seq)
		}
	}
	return st, true, nil
}
