package coordinator

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Storage is what raft persists to and talks over. OpenStorage builds the durable one (boltdb log
// and stable store, file snapshots, TCP transport); tests build one from raft's in-memory parts.
type Storage struct {
	Logs      raft.LogStore
	Stable    raft.StableStore
	Snapshots raft.SnapshotStore
	Transport raft.Transport
	// closers release the parts in reverse order of opening.
	closers []io.Closer
}

const (
	retainSnapshots = 2
	logCacheEntries = 512
	tcpPoolConns    = 3
	tcpTimeout      = 10 * time.Second
	boltOpenTimeout = 2 * time.Second
)

// OpenStorage opens DataDir/raft.db and DataDir/snapshots and listens for raft on RaftBind (or
// RaftAddr). Every log append is fsynced before raft acknowledges it.
func OpenStorage(cfg Config, log *slog.Logger) (*Storage, error) {
	if cfg.DataDir == "" {
		return nil, fmt.Errorf("%w: no data dir", ErrInvalid)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("coordinator: data dir: %w", err)
	}
	st := &Storage{}
	ok := false
	defer func() {
		if !ok {
			_ = st.Close()
		}
	}()
	bolt, err := openBolt(filepath.Join(cfg.DataDir, "raft.db"))
	if err != nil {
		return nil, err
	}
	st.closers = append(st.closers, bolt)
	if st.Logs, err = raft.NewLogCache(logCacheEntries, bolt); err != nil {
		return nil, fmt.Errorf("coordinator: log cache: %w", err)
	}
	st.Stable = bolt
	rl := newRaftLogger(log)
	if st.Snapshots, err = raft.NewFileSnapshotStoreWithLogger(cfg.DataDir, retainSnapshots, rl); err != nil {
		return nil, fmt.Errorf("coordinator: snapshot store: %w", err)
	}
	tr, err := tcpTransport(cfg, rl)
	if err != nil {
		return nil, err
	}
	st.Transport = tr
	st.closers = append(st.closers, tr)
	ok = true
	return st, nil
}

// tcpTransport listens on RaftBind (or RaftAddr) and advertises RaftAddr; with RaftAddr empty or
// on port 0 it advertises whatever it bound (single-node and test clusters).
func tcpTransport(cfg Config, rl hclog.Logger) (*raft.NetworkTransport, error) {
	bind := cmp.Or(cfg.RaftBind, cfg.RaftAddr)
	var advertise net.Addr
	if cfg.RaftAddr != "" && !hasPortZero(cfg.RaftAddr) {
		a, err := net.ResolveTCPAddr("tcp", cfg.RaftAddr)
		if err != nil {
			return nil, fmt.Errorf("%w: raft addr %q: %w", ErrInvalid, cfg.RaftAddr, err)
		}
		advertise = a
	}
	tr, err := raft.NewTCPTransportWithLogger(bind, advertise, tcpPoolConns, tcpTimeout, rl)
	if err != nil {
		return nil, fmt.Errorf("coordinator: raft transport on %s: %w", bind, err)
	}
	return tr, nil
}

// Close releases the transport and the stores.
func (s *Storage) Close() error {
	var errs []error
	for i := len(s.closers) - 1; i >= 0; i-- {
		errs = append(errs, s.closers[i].Close())
	}
	s.closers = nil
	return errors.Join(errs...)
}

// hasPortZero reports whether addr asks for any free port, to be replaced by the bound one.
func hasPortZero(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

// ErrDamaged means raft.db cannot be read: the node must not start from it.
var ErrDamaged = errors.New("damaged raft state")

// openBolt opens the raft log and stable store at path after reading every page of it once.
// bbolt trusts its file: a zeroed, random or missing page makes it panic (or fault on the
// mapping past a truncated end) at whatever read first touches it, often inside raft's own
// goroutines where nothing can recover. Reading it all here, where panics and faults are caught,
// turns damage into one error at start.
func openBolt(path string) (store *raftboltdb.BoltStore, err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if store != nil {
				closeQuietly(store)
			}
			store, err = nil, damaged(path, fmt.Errorf("%v", p))
		}
	}()
	if err := checkBolt(path); err != nil {
		return nil, err
	}
	store, err = raftboltdb.New(raftboltdb.Options{Path: path, BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout}})
	if err != nil {
		return nil, openErr(path, err)
	}
	if err := readLogs(store); err != nil {
		closeQuietly(store)
		return nil, damaged(path, err)
	}
	return store, nil
}

// checkBolt opens an existing non-empty path on its own and walks every bucket, key and value;
// page faults and bbolt's panics surface in the caller's recover (openBolt).
func checkBolt(path string) error {
	info, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new node
	}
	if err != nil {
		return fmt.Errorf("coordinator: %w", err)
	}
	if info.Size() == 0 {
		return damaged(path, errors.New("the file is empty"))
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: boltOpenTimeout})
	if err != nil {
		return openErr(path, err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > info.Size() {
			return fmt.Errorf("truncated: %d bytes, but its pages reach %d", info.Size(), tx.Size())
		}
		return tx.ForEach(func(_ []byte, b *bbolt.Bucket) error { return walkBucket(b) })
	})
	if err != nil {
		return damaged(path, err)
	}
	return nil
}

// walkBucket reads every key and value of b and of the buckets nested in it.
func walkBucket(b *bbolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if nb := b.Bucket(k); nb != nil {
				return walkBucket(nb)
			}
		}
		return nil
	})
}

// readLogs decodes every log entry raft may read back.
func readLogs(s *raftboltdb.BoltStore) error {
	first, err := s.FirstIndex()
	if err != nil {
		return err
	}
	last, err := s.LastIndex()
	if err != nil {
		return err
	}
	for i := first; i <= last && i > 0; i++ {
		var l raft.Log
		if err := s.GetLog(i, &l); err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
	}
	return nil
}

// openErr explains bbolt's open errors: a lock held by another process, or damage.
func openErr(path string, err error) error {
	if errors.Is(err, berrors.ErrTimeout) {
		return fmt.Errorf("coordinator: open %s: locked (another node using %s?): %w", path, filepath.Dir(path), err)
	}
	return damaged(path, err)
}

func damaged(path string, cause error) error {
	return fmt.Errorf("coordinator: %s is damaged (%v): %w; restore the data dir from a backup, "+
		"or move it aside and start this node with an empty --data-dir to rejoin as a new member "+
		"(--join a live node; --replace when it keeps its --id)", path, cause, ErrDamaged)
}

// closeQuietly closes a store that may be damaged; a panic while closing changes nothing.
func closeQuietly(c io.Closer) {
	defer func() { _ = recover() }()
	_ = c.Close()
}
