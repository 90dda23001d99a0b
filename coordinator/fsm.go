package coordinator

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/hashicorp/raft"
)

// snapshotFormat versions the snapshot encoding; Restore refuses formats it does not know.
const snapshotFormat = 1

// FSM is the raft state machine over State. raft calls Apply, Snapshot and Restore from its own
// goroutines, never concurrently with each other; readers on other goroutines use view.
type FSM struct {
	mu    sync.RWMutex
	state *State
	// grown is closed (and replaced) whenever Versions grows or a snapshot replaces the state, so
	// watchers wait on a channel instead of polling.
	grown chan struct{}
}

var _ raft.FSM = (*FSM)(nil)

// NewFSM returns a state machine over an empty State.
func NewFSM() *FSM { return &FSM{state: newState(), grown: make(chan struct{})} }

// result is what Apply returns through raft's ApplyFuture.Response.
type result struct {
	val any
	err error
}

// Apply applies one committed log entry. It is deterministic: the outcome depends only on the
// state and the entry (whose time the leader stamped), so all nodes agree.
func (f *FSM) Apply(l *raft.Log) any {
	c, err := decodeCommand(l.Data)
	if err != nil {
		return result{err: err}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	before := len(f.state.Versions)
	val, err := f.state.apply(c, l.Index)
	if len(f.state.Versions) != before {
		f.notifyLocked()
	}
	return result{val: val, err: err}
}

func (f *FSM) notifyLocked() {
	close(f.grown)
	f.grown = make(chan struct{})
}

// snapshotFile is the snapshot encoding: the whole State as JSON.
type snapshotFile struct {
	Format int    `json:"format"`
	State  *State `json:"state"`
}

// Snapshot encodes the state now (it is small: a few hundred versions and actors), so Persist
// runs without the lock while raft keeps applying.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := json.Marshal(snapshotFile{Format: snapshotFormat, State: f.state})
	f.mu.RUnlock()
	if err != nil {
		return nil, fmt.Errorf("coordinator: snapshot: %w", err)
	}
	return snapshot(b), nil
}

// Restore replaces the state with a snapshot's.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	st, err := decodeSnapshot(rc)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.state = st
	f.notifyLocked()
	return nil
}

func decodeSnapshot(r io.Reader) (*State, error) {
	var file snapshotFile
	if err := json.NewDecoder(r).Decode(&file); err != nil {
		return nil, fmt.Errorf("coordinator: restore: %w", err)
	}
	if file.Format != snapshotFormat || file.State == nil {
		return nil, fmt.Errorf("coordinator: restore: snapshot format %d, want %d", file.Format, snapshotFormat)
	}
	st := file.State
	for i, v := range st.Versions {
		if v.Version != uint64(i+1) {
			return nil, fmt.Errorf("coordinator: restore: version %d at position %d", v.Version, i+1)
		}
	}
	if st.Actors == nil {
		st.Actors = map[string]*Actor{}
	}
	if st.Nodes == nil {
		st.Nodes = map[string]NodeInfo{}
	}
	return st, nil
}

// view runs fn with the state read-locked; fn must not keep references into it.
func (f *FSM) view(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// versionsAfter returns up to limit versions newer than after, and a channel closed when more may
// exist, so a watcher reads and then waits without missing a version in between.
func (f *FSM) versionsAfter(after uint64, limit int) ([]Version, <-chan struct{}) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	n := uint64(len(f.state.Versions))
	if after >= n {
		return nil, f.grown
	}
	end := min(n, after+uint64(limit))
	return append([]Version(nil), f.state.Versions[after:end]...), f.grown
}

// snapshot is an encoded State waiting to be written.
type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("coordinator: persist snapshot: %w", err)
	}
	return sink.Close()
}

func (snapshot) Release() {}
