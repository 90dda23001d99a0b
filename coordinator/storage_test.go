package coordinator

import (
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tsd/rpc"
)

// boltPage is bbolt's page size on the test machines (the OS page size).
const boltPage = 4096

// goodRaftDB is a raft.db written by a real node: a bootstrapped single-node cluster with a
// learner lease and 120 published versions, spread over dozens of pages. Built once per process.
var goodRaftDB = sync.OnceValues(func() ([]byte, error) {
	dir, err := os.MkdirTemp("", "raftdb")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	return buildRaftDB(dir)
})

func buildRaftDB(dir string) ([]byte, error) {
	cfg := fastConfig("n1")
	cfg.RaftAddr, cfg.GRPCAddr, cfg.DataDir = "127.0.0.1:0", "127.0.0.1:0", dir
	cfg.Bootstrap = []Peer{{ID: "n1"}}
	ctx := context.Background()
	s, err := Start(ctx, cfg, rpc.Config{}, nil, testLog())
	if err != nil {
		return nil, err
	}
	n := s.Node()
	for !n.IsLeader() {
		time.Sleep(10 * time.Millisecond)
	}
	res, err := n.AcquireLearnerLease(ctx, AcquireLease{LearnerID: "a", Addr: "a.test:1", Run: testRun("r"), TTLMs: 60_000})
	if err != nil {
		return nil, errors.Join(err, s.Close())
	}
	for v := uint64(1); v <= 120; v++ {
		if _, err := n.PublishVersion(ctx, testVersion(v, v, res.Lease.Epoch)); err != nil {
			return nil, errors.Join(err, s.Close())
		}
	}
	if err := s.Close(); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(dir, "raft.db"))
}

// openDamaged writes b as raft.db of a fresh data dir and opens the node's storage on it.
func openDamaged(t *testing.T, b []byte) (string, error) {
	t.Helper()
	cfg := serviceConfig(t, "n1")
	if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(cfg.DataDir, "raft.db")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := OpenStorage(cfg, testLog())
	if err == nil {
		err = st.Close()
	}
	return path, err
}

// TestDamagedRaftDB damages a real raft.db three ways, page by page: truncated, zeroed pages,
// random pages. No damage may panic; every refusal names the file and says what to do. A page
// bbolt no longer uses may be damaged harmlessly, but each kind must be caught somewhere.
func TestDamagedRaftDB(t *testing.T) {
	good, err := goodRaftDB()
	if err != nil {
		t.Fatal(err)
	}
	pages := len(good) / boltPage
	if pages < 8 {
		t.Fatalf("raft.db has only %d pages", pages)
	}
	if _, err := openDamaged(t, good); err != nil {
		t.Fatalf("undamaged raft.db: %v", err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kind := range []struct {
		name   string
		damage func(b []byte, page int) []byte
	}{
		{"truncated", func(b []byte, page int) []byte { return b[:page*boltPage] }},
		{"zeroed", func(b []byte, page int) []byte {
			clear(b[page*boltPage : (page+1)*boltPage])
			return b
		}},
		{"random", func(b []byte, page int) []byte {
			for i := page * boltPage; i < (page+1)*boltPage; i++ {
				b[i] = byte(rng.Uint32())
			}
			return b
		}},
	} {
		t.Run(kind.name, func(t *testing.T) {
			refused := 0
			for page := range pages {
				path, err := openDamaged(t, kind.damage(append([]byte(nil), good...), page))
				if err == nil {
					continue
				}
				refused++
				msg := err.Error()
				if !errors.Is(err, ErrDamaged) || !strings.Contains(msg, path) || !strings.Contains(msg, "rejoin") {
					t.Fatalf("page %d: %v; want ErrDamaged naming %s and what to do", page, err, path)
				}
				if refused == 1 {
					t.Logf("page %d: %v", page, err)
				}
			}
			if refused == 0 {
				t.Fatalf("no %s page of %d was noticed", kind.name, pages)
			}
			t.Logf("%d of %d %s pages refused", refused, pages, kind.name)
		})
	}
}

// FuzzDamagedRaftDB overwrites a real raft.db at any offset: opening it may fail, never panic.
func FuzzDamagedRaftDB(f *testing.F) {
	good, err := goodRaftDB()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint32(0), []byte{0, 0, 0, 0})
	f.Add(uint32(2*boltPage), make([]byte, boltPage))
	f.Add(uint32(3*boltPage+16), []byte("\xff\xff\xff\xff\xff\xff\xff\xff"))
	f.Add(uint32(len(good)-boltPage), []byte("garbage"))
	f.Fuzz(func(t *testing.T, off uint32, patch []byte) {
		b := append([]byte(nil), good...)
		copy(b[int(off)%len(b):], patch)
		if _, err := openDamaged(t, b); err != nil && !errors.Is(err, ErrDamaged) {
			t.Fatalf("damaged raft.db: %v, want ErrDamaged", err)
		}
	})
}
