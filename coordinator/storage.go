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
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
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
	bolt, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(cfg.DataDir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: boltOpenTimeout},
	})
	if err != nil {
		return nil, fmt.Errorf("coordinator: open raft.db (another node using %s?): %w", cfg.DataDir, err)
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
