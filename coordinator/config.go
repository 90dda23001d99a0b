package coordinator

import (
	"fmt"
	"strings"
	"time"
)

// Config configures one coordinator node.
type Config struct {
	// NodeID names this node in raft; it must stay the same across restarts.
	NodeID string

	// RaftAddr is the host:port other nodes reach this node's raft transport at. RaftBind is the
	// address to listen on when it differs (0.0.0.0:7101 in a container); "" = RaftAddr.
	RaftAddr string
	RaftBind string

	// GRPCAddr is the host:port clients and other nodes reach this node's gRPC server at; followers
	// forward writes there when this node leads. GRPCBind is the listen address; "" = GRPCAddr.
	GRPCAddr string
	GRPCBind string

	// DataDir holds raft.db (log and stable store) and snapshots/. Empty only with in-memory storage.
	DataDir string

	// Bootstrap lists the initial voters, this node included; every initial node gets the same
	// list. It is ignored when DataDir already holds raft state. A peer without addresses stands
	// for this node's own (a single-node cluster listening on port 0). Empty = join instead.
	Bootstrap []Peer
	// Join lists gRPC addresses of existing coordinators to ask for membership when this node has
	// no raft state yet. Ignored when Bootstrap is set.
	Join []string
	// Replace lets a join take the id or raft address over from a voter that has other addresses
	// (a member rebuilt on a new host); without it such a join is refused.
	Replace bool

	// ApplyTimeout bounds how long a write waits for raft to commit it.
	ApplyTimeout time.Duration
	// LearnerTTL and ActorTTL are the lease lengths for requests that leave ttl_ms at 0.
	LearnerTTL, ActorTTL time.Duration

	// HeartbeatTimeout and ElectionTimeout are raft's failure-detection times: a follower that
	// hears nothing from the leader for about this long starts an election. Lower = faster
	// fail-over, but more spurious elections on a loaded host.
	HeartbeatTimeout, ElectionTimeout time.Duration

	// SnapshotThreshold is how many new log entries trigger a snapshot (checked every
	// SnapshotInterval); the log before a snapshot is then truncated.
	SnapshotThreshold uint64
	SnapshotInterval  time.Duration
}

// Peer is one initial voter: its raft id and addresses.
type Peer = NodeInfo

// DefaultConfig returns the settings for a LAN cluster; the caller sets the ids and addresses.
func DefaultConfig() Config {
	return Config{
		ApplyTimeout:      5 * time.Second,
		LearnerTTL:        15 * time.Second,
		ActorTTL:          15 * time.Second,
		HeartbeatTimeout:  time.Second,
		ElectionTimeout:   time.Second,
		SnapshotThreshold: 1024,
		SnapshotInterval:  30 * time.Second,
	}
}

// Validate checks the fields a node needs before it touches disk or network.
func (c Config) Validate() error {
	if err := checkID("node id", c.NodeID); err != nil {
		return err
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"apply timeout", c.ApplyTimeout}, {"heartbeat timeout", c.HeartbeatTimeout}, {"election timeout", c.ElectionTimeout}, {"snapshot interval", c.SnapshotInterval}} {
		if d.v <= 0 {
			return fmt.Errorf("%w: %s %v must be positive", ErrInvalid, d.name, d.v)
		}
	}
	for _, ttl := range []time.Duration{c.LearnerTTL, c.ActorTTL} {
		if err := checkTTL(ttl.Milliseconds()); err != nil {
			return err
		}
	}
	if c.SnapshotThreshold == 0 {
		return fmt.Errorf("%w: snapshot threshold 0", ErrInvalid)
	}
	return c.validateBootstrap()
}

func (c Config) validateBootstrap() error {
	self := false
	seen := map[string]bool{}
	for _, p := range c.Bootstrap {
		if seen[p.ID] {
			return fmt.Errorf("%w: bootstrap names %s twice", ErrInvalid, p.ID)
		}
		seen[p.ID] = true
		if p.ID == c.NodeID {
			self = true
			if p.RaftAddr == "" && p.GRPCAddr == "" {
				continue // filled in with the bound addresses
			}
			if p.RaftAddr != c.RaftAddr || p.GRPCAddr != c.GRPCAddr {
				return fmt.Errorf("%w: bootstrap gives %s addresses %s/%s but the node advertises %s/%s",
					ErrInvalid, p.ID, p.RaftAddr, p.GRPCAddr, c.RaftAddr, c.GRPCAddr)
			}
		}
		if err := p.validate(); err != nil {
			return err
		}
	}
	if len(c.Bootstrap) > 0 && !self {
		return fmt.Errorf("%w: bootstrap list does not include this node %s", ErrInvalid, c.NodeID)
	}
	return nil
}

// ParsePeers parses a bootstrap list: comma-separated ID=RAFT_ADDR=GRPC_ADDR entries, e.g.
// "n1=10.0.0.1:7101=10.0.0.1:7001,n2=10.0.0.2:7101=10.0.0.2:7001".
func ParsePeers(s string) ([]Peer, error) {
	var peers []Peer
	for entry := range strings.SplitSeq(s, ",") {
		entry = strings.TrimSpace(entry)
		parts := strings.Split(entry, "=")
		if len(parts) != 3 {
			return nil, fmt.Errorf("%w: bootstrap entry %q is not ID=RAFT_ADDR=GRPC_ADDR", ErrInvalid, entry)
		}
		p := Peer{ID: parts[0], RaftAddr: parts[1], GRPCAddr: parts[2]}
		if err := p.validate(); err != nil {
			return nil, fmt.Errorf("bootstrap entry %q: %w", entry, err)
		}
		peers = append(peers, p)
	}
	return peers, nil
}
