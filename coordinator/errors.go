package coordinator

import "errors"

// Sentinel errors. The state machine returns the first group (the same on every node, since
// Apply is deterministic); the node returns the second. Errors are wrapped with %w and context, so
// match them with errors.Is. The gRPC adapter maps each to one status code (see toStatus) and the
// Client maps the code and reason back, so errors.Is works across the network too.
var (
	// ErrInvalid: a malformed request (empty id, bad digest, out-of-range ttl). InvalidArgument.
	ErrInvalid = errors.New("invalid request")
	// ErrLeaseHeld: another learner holds a live lease for this run. FailedPrecondition.
	ErrLeaseHeld = errors.New("learner lease held by another learner")
	// ErrConfigMismatch: the run config hash differs from the one the first learner recorded.
	// FailedPrecondition.
	ErrConfigMismatch = errors.New("run config differs from the recorded one")
	// ErrFenced: the caller's lease epoch is not the current one; a newer learner took over.
	// FailedPrecondition.
	ErrFenced = errors.New("stale learner epoch")
	// ErrLeaseExpired: the caller's lease lapsed; renew it before publishing. FailedPrecondition.
	ErrLeaseExpired = errors.New("learner lease expired")
	// ErrVersionOrder: a published version is not latest+1, or its step goes backwards.
	// FailedPrecondition.
	ErrVersionOrder = errors.New("version out of order")
	// ErrUnknownActor: no live lease for this actor; it must register (again). NotFound.
	ErrUnknownActor = errors.New("unknown or expired actor")
	// ErrUnknownVersion: no such published version. NotFound.
	ErrUnknownVersion = errors.New("unknown version")
	// ErrMemberExists: a Join names the id or raft address of a voter that has other addresses.
	// AlreadyExists.
	ErrMemberExists = errors.New("member exists")

	// ErrNotLeader: this node is a follower; the adapter forwards the write to the leader.
	// Unavailable when it reaches a client.
	ErrNotLeader = errors.New("not the raft leader")
	// ErrNoLeader: no leader is known (election under way, or no quorum). Unavailable: retry.
	ErrNoLeader = errors.New("no raft leader")
	// ErrUnavailable: raft could not commit in time or the node is shutting down. Unavailable.
	ErrUnavailable = errors.New("coordinator unavailable")
)

// reasons names each sentinel for metrics labels and for the gRPC ErrorInfo detail that lets the
// Client turn a status back into the sentinel. The names are part of the API: never reuse one.
var reasons = []struct {
	err    error
	reason string
}{
	{ErrInvalid, "INVALID"},
	{ErrLeaseHeld, "LEASE_HELD"},
	{ErrConfigMismatch, "CONFIG_MISMATCH"},
	{ErrFenced, "FENCED"},
	{ErrLeaseExpired, "LEASE_EXPIRED"},
	{ErrVersionOrder, "VERSION_ORDER"},
	{ErrUnknownActor, "UNKNOWN_ACTOR"},
	{ErrUnknownVersion, "UNKNOWN_VERSION"},
	{ErrMemberExists, "MEMBER_EXISTS"},
	{ErrNotLeader, "NOT_LEADER"},
	{ErrNoLeader, "NO_LEADER"},
	{ErrUnavailable, "UNAVAILABLE"},
}

// reasonOf names err's sentinel, or "OTHER".
func reasonOf(err error) string {
	for _, r := range reasons {
		if errors.Is(err, r.err) {
			return r.reason
		}
	}
	return "OTHER"
}

// sentinelOf is the sentinel a reason names, or nil.
func sentinelOf(reason string) error {
	for _, r := range reasons {
		if r.reason == reason {
			return r.err
		}
	}
	return nil
}
