package coordinator

// The replicated records. Times are Unix milliseconds from the leader's clock, stamped into each
// command before it is replicated, so every node computes the same expiries.

// RunConfig identifies a run. The first learner records it; later learners must present the same
// ConfigSHA256 (a learner started with other hyper-parameters must not continue this run).
type RunConfig struct {
	RunID        string `json:"run_id"`
	ConfigSHA256 string `json:"config_sha256"`         // hex sha256 of ConfigJSON
	ConfigJSON   []byte `json:"config_json,omitempty"` // optional; checked against the digest
}

// LearnerLease names the one learner allowed to publish. Epoch grows with every grant (a fencing
// token): a publish carrying an older epoch comes from a learner that was replaced.
type LearnerLease struct {
	LearnerID     string `json:"learner_id"`
	Addr          string `json:"addr"`
	Epoch         uint64 `json:"epoch"`
	ExpiresUnixMs int64  `json:"expires_unix_ms"`
}

// Version is one published policy: immutable weights named by their digest.
type Version struct {
	Version       uint64 `json:"version"` // 1, 2, 3, ... without gaps
	Step          uint64 `json:"step"`    // learner optimizer step; never decreases
	SHA256        string `json:"sha256"`
	SizeBytes     int64  `json:"size_bytes"`
	FetchAddr     string `json:"fetch_addr"`
	CreatedUnixMs int64  `json:"created_unix_ms"`
	LearnerEpoch  uint64 `json:"learner_epoch"`
	// CommitIndex is the raft log index that committed the version (set by the state machine).
	CommitIndex uint64 `json:"commit_index"`
}

// Actor is a registered actor's lease.
type Actor struct {
	ID               string `json:"id"`
	Addr             string `json:"addr"`         // serves weights to peers; "" = serves nothing
	HeldVersion      uint64 `json:"held_version"` // verified weights the actor can serve
	ExpiresUnixMs    int64  `json:"expires_unix_ms"`
	RegisteredUnixMs int64  `json:"registered_unix_ms"`
	// Assigned counts the fetchers WeightSource sent to this actor for AssignedVersion, so the
	// next fetcher goes to the least loaded holder.
	AssignedVersion uint64 `json:"assigned_version,omitempty"`
	Assigned        uint64 `json:"assigned,omitempty"`
}

// NodeInfo is a coordinator's addresses; the state keeps them so a follower can forward a write to
// the leader's gRPC address (raft itself only knows raft addresses).
type NodeInfo struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	GRPCAddr string `json:"grpc_addr"`
}

// JoinRequest asks the leader to add a node as a non-voter, or to promote it (see Node.Join).
type JoinRequest struct {
	NodeInfo
	// Replace allows taking the id or raft address over from a voter that has other addresses.
	Replace bool
	// AppliedIndex is the joiner's applied raft index; 0 on the first call.
	AppliedIndex uint64
}

// JoinResult says whether the node is a voter, and if not, up to which index to catch up before
// calling Join again.
type JoinResult struct {
	Voter        bool
	CatchUpIndex uint64
}

// AcquireLease asks for the learner lease.
type AcquireLease struct {
	LearnerID string    `json:"learner_id"`
	Addr      string    `json:"addr"`
	Run       RunConfig `json:"run"`
	TTLMs     int64     `json:"ttl_ms"` // 0 = the node's default
}

// AcquireResult is a granted lease and the newest version, where the learner resumes.
type AcquireResult struct {
	Lease  LearnerLease `json:"lease"`
	Latest *Version     `json:"latest,omitempty"`
}

// RenewLease extends the lease of the given epoch.
type RenewLease struct {
	LearnerID string `json:"learner_id"`
	Epoch     uint64 `json:"epoch"`
	TTLMs     int64  `json:"ttl_ms"`
}

// RegisterActor starts (or restarts) an actor's lease.
type RegisterActor struct {
	ActorID string `json:"actor_id"`
	Addr    string `json:"addr"`
	TTLMs   int64  `json:"ttl_ms"`
}

// RegisterResult tells a new actor whom to stream to and what to fetch.
type RegisterResult struct {
	ExpiresUnixMs int64         `json:"expires_unix_ms"`
	Learner       *LearnerLease `json:"learner,omitempty"`
	Run           *RunConfig    `json:"run,omitempty"`
	Latest        *Version      `json:"latest,omitempty"`
}

// Heartbeat renews an actor's lease and reports the version it holds.
type Heartbeat struct {
	ActorID     string `json:"actor_id"`
	HeldVersion uint64 `json:"held_version"`
	TTLMs       int64  `json:"ttl_ms"`
}

// HeartbeatResult is the renewed expiry and what changed since: the learner and latest version.
type HeartbeatResult struct {
	ExpiresUnixMs int64         `json:"expires_unix_ms"`
	Learner       *LearnerLease `json:"learner,omitempty"`
	LatestVersion uint64        `json:"latest_version"`
}

// SourceRequest asks where ActorID should fetch Version (0 = latest).
type SourceRequest struct {
	ActorID string `json:"actor_id"`
	Version uint64 `json:"version"`
}

// Member is one raft server as ClusterState reports it.
type Member struct {
	NodeInfo
	Voter  bool
	Leader bool
}

// ClusterState is one node's view: raft membership from raft, the rest from its local state
// machine (on a follower it can lag the leader by the replication delay).
type ClusterState struct {
	Members     []Member
	LeaderID    string
	CommitIndex uint64 // the last index this node applied
	Run         *RunConfig
	Learner     *LearnerLease
	Latest      *Version
	Versions    uint64
	Actors      []Actor // live at this node's clock, sorted by id
}
