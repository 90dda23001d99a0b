package coordinator

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
)

// maxPeerSources bounds how many peers WeightSource suggests before the learner.
const maxPeerSources = 3

// State is everything the coordinators replicate. Its methods are the rules; they read the time
// only from the command, never from a clock, so every node that applies the same log reaches the
// same State. encoding/json writes maps in key order, so equal states snapshot to equal bytes.
type State struct {
	Run      *RunConfig          `json:"run,omitempty"`
	Learner  *LearnerLease       `json:"learner,omitempty"`
	Versions []Version           `json:"versions"` // Versions[i].Version == i+1
	Actors   map[string]*Actor   `json:"actors"`
	Nodes    map[string]NodeInfo `json:"nodes"`
}

func newState() *State {
	return &State{Actors: map[string]*Actor{}, Nodes: map[string]NodeInfo{}}
}

// apply executes one validated command committed at log index. The result is the command's
// response type; the error is a rule violation, identical on every node.
func (s *State) apply(c *command, index uint64) (any, error) {
	now := c.NowUnixMs
	s.expireActors(now)
	switch c.Op {
	case opAcquireLease:
		return s.acquire(*c.Acquire, now)
	case opRenewLease:
		return s.renew(*c.Renew, now)
	case opPublish:
		return s.publish(*c.Publish, now, index)
	case opRegisterActor:
		return s.register(*c.Register, now), nil
	case opHeartbeat:
		return s.heartbeat(*c.Heartbeat, now)
	case opDeregisterActor:
		delete(s.Actors, c.ActorID)
		return nil, nil
	case opAssignSource:
		return s.assignSource(*c.Source)
	case opSetNodes:
		for _, n := range c.Nodes {
			s.Nodes[n.ID] = n
		}
		return nil, nil
	}
	return nil, fmt.Errorf("%w: unknown command %q", ErrInvalid, c.Op)
}

// expireActors drops actors whose lease ended; they must register again.
func (s *State) expireActors(now int64) {
	maps.DeleteFunc(s.Actors, func(_ string, a *Actor) bool { return a.ExpiresUnixMs <= now })
}

func (s *State) latest() *Version {
	if len(s.Versions) == 0 {
		return nil
	}
	v := s.Versions[len(s.Versions)-1]
	return &v
}

// acquire grants the learner lease unless another learner holds it live. Every grant, even to the
// same learner id, takes a new epoch: a restarted learner fences its own former incarnation.
func (s *State) acquire(r AcquireLease, now int64) (AcquireResult, error) {
	if s.Run != nil && (s.Run.RunID != r.Run.RunID || s.Run.ConfigSHA256 != r.Run.ConfigSHA256) {
		return AcquireResult{}, fmt.Errorf("%w: run %s config %s was recorded, learner %s brings run %s config %s",
			ErrConfigMismatch, s.Run.RunID, s.Run.ConfigSHA256, r.LearnerID, r.Run.RunID, r.Run.ConfigSHA256)
	}
	var epoch uint64 = 1
	if l := s.Learner; l != nil {
		if l.LearnerID != r.LearnerID && l.ExpiresUnixMs > now {
			return AcquireResult{}, fmt.Errorf("%w: %s holds epoch %d for %d ms more",
				ErrLeaseHeld, l.LearnerID, l.Epoch, l.ExpiresUnixMs-now)
		}
		epoch = l.Epoch + 1
	}
	if s.Run == nil {
		run := r.Run
		s.Run = &run
	}
	s.Learner = &LearnerLease{LearnerID: r.LearnerID, Addr: r.Addr, Epoch: epoch, ExpiresUnixMs: now + r.TTLMs}
	return AcquireResult{Lease: *s.Learner, Latest: s.latest()}, nil
}

// fenced reports whether learnerID at epoch is no longer the lease holder.
func (s *State) fenced(learnerID string, epoch uint64) error {
	l := s.Learner
	if l == nil {
		return fmt.Errorf("%w: no learner lease was granted", ErrFenced)
	}
	if l.Epoch != epoch || (learnerID != "" && l.LearnerID != learnerID) {
		return fmt.Errorf("%w: epoch %d of %s is current, not epoch %d of %s",
			ErrFenced, l.Epoch, l.LearnerID, epoch, learnerID)
	}
	return nil
}

// renew extends the current epoch's lease, even one that lapsed: while nobody else acquired it,
// no one was fenced, so the holder may carry on.
func (s *State) renew(r RenewLease, now int64) (LearnerLease, error) {
	if err := s.fenced(r.LearnerID, r.Epoch); err != nil {
		return LearnerLease{}, err
	}
	s.Learner.ExpiresUnixMs = now + r.TTLMs
	return *s.Learner, nil
}

// publish appends v if it comes from the live current epoch and is exactly latest+1. Publishing an
// already-committed version again with the same digest succeeds, so a learner may retry a publish
// whose answer it lost.
func (s *State) publish(v Version, now int64, index uint64) (Version, error) {
	if err := s.fenced("", v.LearnerEpoch); err != nil {
		return Version{}, err
	}
	if s.Learner.ExpiresUnixMs <= now {
		return Version{}, fmt.Errorf("%w: epoch %d lapsed %d ms ago; renew first",
			ErrLeaseExpired, v.LearnerEpoch, now-s.Learner.ExpiresUnixMs)
	}
	n := uint64(len(s.Versions))
	if v.Version <= n {
		if old := s.Versions[v.Version-1]; old.SHA256 == v.SHA256 && old.LearnerEpoch == v.LearnerEpoch {
			return old, nil
		}
		return Version{}, fmt.Errorf("%w: version %d is already published (latest %d)", ErrVersionOrder, v.Version, n)
	}
	if v.Version != n+1 {
		return Version{}, fmt.Errorf("%w: version %d skips ahead; next is %d", ErrVersionOrder, v.Version, n+1)
	}
	if last := s.latest(); last != nil && v.Step < last.Step {
		return Version{}, fmt.Errorf("%w: step %d is before version %d's step %d", ErrVersionOrder, v.Step, last.Version, last.Step)
	}
	if v.CreatedUnixMs == 0 {
		v.CreatedUnixMs = now
	}
	v.CommitIndex = index
	s.Versions = append(s.Versions, v)
	return v, nil
}

// register (re)starts an actor's lease; a re-registering actor starts again holding nothing.
func (s *State) register(r RegisterActor, now int64) RegisterResult {
	a := &Actor{ID: r.ActorID, Addr: r.Addr, ExpiresUnixMs: now + r.TTLMs, RegisteredUnixMs: now}
	s.Actors[r.ActorID] = a
	res := RegisterResult{ExpiresUnixMs: a.ExpiresUnixMs, Latest: s.latest()}
	if s.Run != nil {
		run := *s.Run
		res.Run = &run
	}
	if s.Learner != nil {
		l := *s.Learner
		res.Learner = &l
	}
	return res
}

func (s *State) heartbeat(r Heartbeat, now int64) (HeartbeatResult, error) {
	a, ok := s.Actors[r.ActorID]
	if !ok {
		return HeartbeatResult{}, fmt.Errorf("%w: %s (register again)", ErrUnknownActor, r.ActorID)
	}
	if n := uint64(len(s.Versions)); r.HeldVersion > n {
		return HeartbeatResult{}, fmt.Errorf("%w: %s holds version %d but the latest is %d", ErrUnknownVersion, r.ActorID, r.HeldVersion, n)
	}
	a.HeldVersion = r.HeldVersion
	a.ExpiresUnixMs = now + r.TTLMs
	res := HeartbeatResult{ExpiresUnixMs: a.ExpiresUnixMs, LatestVersion: uint64(len(s.Versions))}
	if s.Learner != nil {
		l := *s.Learner
		res.Learner = &l
	}
	return res, nil
}

// assignSource lists where r.ActorID should fetch a version: up to maxPeerSources live peers that
// hold it, least assigned first (ties by id, so the answer is deterministic), then the learner that
// published it, then the current learner if that is elsewhere. The first peer is charged with the
// fetch, which spreads fetchers over holders instead of sending everyone to one peer.
func (s *State) assignSource(r SourceRequest) ([]string, error) {
	if _, ok := s.Actors[r.ActorID]; !ok {
		return nil, fmt.Errorf("%w: %s (register again)", ErrUnknownActor, r.ActorID)
	}
	n := uint64(len(s.Versions))
	want := r.Version
	if want == 0 {
		want = n
	}
	if want == 0 || want > n {
		return nil, fmt.Errorf("%w: %d (latest %d)", ErrUnknownVersion, r.Version, n)
	}
	var holders []*Actor
	for _, a := range s.Actors {
		if a.ID != r.ActorID && a.Addr != "" && a.HeldVersion == want {
			holders = append(holders, a)
		}
	}
	slices.SortFunc(holders, func(a, b *Actor) int {
		return cmp.Or(cmp.Compare(a.assignedFor(want), b.assignedFor(want)), cmp.Compare(a.ID, b.ID))
	})
	holders = holders[:min(len(holders), maxPeerSources)]
	addrs := make([]string, 0, len(holders)+2)
	for _, a := range holders {
		addrs = append(addrs, a.Addr)
	}
	if len(holders) > 0 {
		holders[0].charge(want)
	}
	fetch := s.Versions[want-1].FetchAddr
	addrs = append(addrs, fetch)
	if s.Learner != nil && s.Learner.Addr != fetch {
		addrs = append(addrs, s.Learner.Addr)
	}
	return addrs, nil
}

func (a *Actor) assignedFor(v uint64) uint64 {
	if a.AssignedVersion != v {
		return 0
	}
	return a.Assigned
}

func (a *Actor) charge(v uint64) {
	if a.AssignedVersion != v {
		a.AssignedVersion, a.Assigned = v, 0
	}
	a.Assigned++
}

// liveActors returns the actors whose lease is live at now, sorted by id.
func (s *State) liveActors(now int64) []Actor {
	out := make([]Actor, 0, len(s.Actors))
	for _, a := range s.Actors {
		if a.ExpiresUnixMs > now {
			out = append(out, *a)
		}
	}
	slices.SortFunc(out, func(a, b Actor) int { return cmp.Compare(a.ID, b.ID) })
	return out
}
