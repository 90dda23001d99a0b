package coordinator

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on what a request may carry; they keep the raft log and snapshots small.
const (
	maxIDBytes     = 128
	maxAddrBytes   = 256
	maxConfigBytes = 1 << 20
	// MaxTTL is the longest lease a request may ask for: a dead learner or actor must not block
	// the run for longer.
	MaxTTL = time.Hour
)

// op names a command; it is stored in the log, so values never change meaning.
type op string

const (
	opAcquireLease    op = "acquire_lease"
	opRenewLease      op = "renew_lease"
	opPublish         op = "publish"
	opRegisterActor   op = "register_actor"
	opHeartbeat       op = "heartbeat"
	opDeregisterActor op = "deregister_actor"
	opAssignSource    op = "assign_source"
	opSetNodes        op = "set_nodes"
)

// command is the one kind of raft log entry: an operation, the leader's clock when it was
// proposed, and exactly the payload field that the operation names. JSON keeps the log readable
// with standard tools; commands are small and rare (a publish every few seconds), so its cost
// does not matter.
type command struct {
	Op        op             `json:"op"`
	NowUnixMs int64          `json:"now_unix_ms"`
	Acquire   *AcquireLease  `json:"acquire,omitempty"`
	Renew     *RenewLease    `json:"renew,omitempty"`
	Publish   *Version       `json:"publish,omitempty"`
	Register  *RegisterActor `json:"register,omitempty"`
	Heartbeat *Heartbeat     `json:"heartbeat,omitempty"`
	ActorID   string         `json:"actor_id,omitempty"` // deregister_actor
	Source    *SourceRequest `json:"source,omitempty"`
	Nodes     []NodeInfo     `json:"nodes,omitempty"`
}

func (c *command) encode() ([]byte, error) {
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("coordinator: encode %s: %w", c.Op, err)
	}
	return b, nil
}

// decodeCommand parses and validates one log entry. A committed entry that fails here was written
// by a different build; Apply reports it as an error result rather than crash every node.
func decodeCommand(b []byte) (*command, error) {
	var c command
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: command: %w", ErrInvalid, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: command: trailing data", ErrInvalid)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// validate checks that the payload matches the op and is well-formed. It reads no state, so the
// leader runs it before proposing (cheap refusal) and Apply runs it again (defence in depth).
func (c *command) validate() error {
	if c.NowUnixMs <= 0 {
		return fmt.Errorf("%w: command without a time", ErrInvalid)
	}
	payloads := 0
	for _, set := range []bool{c.Acquire != nil, c.Renew != nil, c.Publish != nil, c.Register != nil,
		c.Heartbeat != nil, c.ActorID != "", c.Source != nil, c.Nodes != nil} {
		if set {
			payloads++
		}
	}
	if payloads != 1 {
		return fmt.Errorf("%w: command %q carries %d payloads, want 1", ErrInvalid, c.Op, payloads)
	}
	switch c.Op {
	case opAcquireLease:
		return ifSet(c.Acquire, AcquireLease.validate)
	case opRenewLease:
		return ifSet(c.Renew, RenewLease.validate)
	case opPublish:
		return ifSet(c.Publish, Version.validate)
	case opRegisterActor:
		return ifSet(c.Register, RegisterActor.validate)
	case opHeartbeat:
		return ifSet(c.Heartbeat, Heartbeat.validate)
	case opDeregisterActor:
		return checkID("actor_id", c.ActorID)
	case opAssignSource:
		return ifSet(c.Source, SourceRequest.validate)
	case opSetNodes:
		return validateNodes(c.Nodes)
	}
	return fmt.Errorf("%w: unknown command %q", ErrInvalid, c.Op)
}

// ifSet validates a payload that must be present.
func ifSet[T any](p *T, validate func(T) error) error {
	if p == nil {
		return fmt.Errorf("%w: payload missing for its command", ErrInvalid)
	}
	return validate(*p)
}

func (r AcquireLease) validate() error {
	if err := checkID("learner_id", r.LearnerID); err != nil {
		return err
	}
	if err := checkAddr("addr", r.Addr); err != nil {
		return err
	}
	if err := r.Run.validate(); err != nil {
		return err
	}
	return checkTTL(r.TTLMs)
}

func (r RunConfig) validate() error {
	if err := checkID("run_id", r.RunID); err != nil {
		return err
	}
	if err := checkDigest("config_sha256", r.ConfigSHA256); err != nil {
		return err
	}
	if len(r.ConfigJSON) > maxConfigBytes {
		return fmt.Errorf("%w: config_json is %d bytes, limit %d", ErrInvalid, len(r.ConfigJSON), maxConfigBytes)
	}
	if len(r.ConfigJSON) > 0 {
		sum := sha256.Sum256(r.ConfigJSON)
		if got := hex.EncodeToString(sum[:]); got != r.ConfigSHA256 {
			return fmt.Errorf("%w: config_sha256 %s is not the digest of config_json (%s)", ErrInvalid, r.ConfigSHA256, got)
		}
	}
	return nil
}

func (r RenewLease) validate() error {
	if err := checkID("learner_id", r.LearnerID); err != nil {
		return err
	}
	if r.Epoch == 0 {
		return fmt.Errorf("%w: epoch 0 (epochs start at 1)", ErrInvalid)
	}
	return checkTTL(r.TTLMs)
}

func (v Version) validate() error {
	switch {
	case v.Version == 0:
		return fmt.Errorf("%w: version 0 is the initial model and is never published", ErrInvalid)
	case v.SizeBytes <= 0:
		return fmt.Errorf("%w: size_bytes %d <= 0", ErrInvalid, v.SizeBytes)
	case v.LearnerEpoch == 0:
		return fmt.Errorf("%w: learner_epoch 0 (take the epoch from the lease)", ErrInvalid)
	case v.CreatedUnixMs < 0:
		return fmt.Errorf("%w: created_unix_ms %d < 0", ErrInvalid, v.CreatedUnixMs)
	}
	if err := checkDigest("sha256", v.SHA256); err != nil {
		return err
	}
	return checkAddr("fetch_addr", v.FetchAddr)
}

func (r RegisterActor) validate() error {
	if err := checkID("actor_id", r.ActorID); err != nil {
		return err
	}
	if r.Addr != "" {
		if err := checkAddr("addr", r.Addr); err != nil {
			return err
		}
	}
	return checkTTL(r.TTLMs)
}

func (r Heartbeat) validate() error {
	if err := checkID("actor_id", r.ActorID); err != nil {
		return err
	}
	return checkTTL(r.TTLMs)
}

func (r SourceRequest) validate() error { return checkID("actor_id", r.ActorID) }

func (n NodeInfo) validate() error {
	if err := checkID("node_id", n.ID); err != nil {
		return err
	}
	if err := checkAddr("raft_addr", n.RaftAddr); err != nil {
		return err
	}
	return checkAddr("grpc_addr", n.GRPCAddr)
}

func validateNodes(nodes []NodeInfo) error {
	if len(nodes) == 0 {
		return fmt.Errorf("%w: no nodes", ErrInvalid)
	}
	for _, n := range nodes {
		if err := n.validate(); err != nil {
			return err
		}
	}
	return nil
}

// checkID accepts 1..128 bytes of printable UTF-8 without spaces: ids appear in logs, metrics
// labels and file names.
func checkID(field, id string) error {
	if id == "" || len(id) > maxIDBytes || !utf8.ValidString(id) {
		return fmt.Errorf("%w: %s %q must be 1..%d bytes of UTF-8", ErrInvalid, field, id, maxIDBytes)
	}
	for _, r := range id {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return fmt.Errorf("%w: %s %q contains a space or control character", ErrInvalid, field, id)
		}
	}
	return nil
}

// checkAddr accepts host:port with a non-empty host and a port in 1..65535: an address others dial.
func checkAddr(field, addr string) error {
	if len(addr) > maxAddrBytes {
		return fmt.Errorf("%w: %s is %d bytes, limit %d", ErrInvalid, field, len(addr), maxAddrBytes)
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%w: %s %q: %w", ErrInvalid, field, addr, err)
	}
	p, err := strconv.ParseUint(port, 10, 16)
	if host == "" || err != nil || p == 0 {
		return fmt.Errorf("%w: %s %q is not host:port", ErrInvalid, field, addr)
	}
	return nil
}

// checkDigest accepts a lowercase hex sha256, as hex.EncodeToString writes it.
func checkDigest(field, d string) error {
	if len(d) != 2*sha256.Size {
		return fmt.Errorf("%w: %s %q is not 64 hex digits", ErrInvalid, field, d)
	}
	for _, c := range []byte(d) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return fmt.Errorf("%w: %s %q is not lowercase hex", ErrInvalid, field, d)
		}
	}
	return nil
}

func checkTTL(ms int64) error {
	if ms <= 0 || ms > MaxTTL.Milliseconds() {
		return fmt.Errorf("%w: ttl %d ms outside 1..%d", ErrInvalid, ms, MaxTTL.Milliseconds())
	}
	return nil
}
