package learner

import (
	"math"
	"sync"
	"time"

	"tsd/algo"
	tsdv1 "tsd/proto/tsd/v1"
)

// statusWindow is how many recent samples the reward and length statistics cover, and rateWindow
// how many recent steps the throughput covers.
const (
	statusWindow = 512
	rateWindow   = 20
)

// statusBoard collects what Status reports. The training loop and the streams write it; Status
// RPCs read it.
type statusBoard struct {
	mu        sync.Mutex
	start     time.Time
	runID, id string
	algo      tsdv1.Algo
	step      int64
	version   uint64
	epoch     uint64
	lr        float64
	losses    map[string]float64
	reward    ring
	length    ring
	correct   ring
	next      uint64 // log index the training loop reads next
	trained   uint64 // rollouts trained on
	steps     []stepMark
	actors    map[string]*tsdv1.ActorStatus
	streams   map[string]int // open streams per actor: a reconnect may overlap the old stream's end
}

type stepMark struct {
	at               time.Time
	rollouts, tokens int
}

func newStatusBoard(cfg ServiceConfig, train Config) *statusBoard {
	return &statusBoard{start: time.Now(), runID: cfg.RunID, id: cfg.ID, algo: algo.Wire(train.Algo),
		losses: map[string]float64{}, reward: newRing(statusWindow), length: newRing(statusWindow),
		correct: newRing(statusWindow), actors: map[string]*tsdv1.ActorStatus{}, streams: map[string]int{}}
}

func (b *statusBoard) setVersion(v uint64, step int64, epoch uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.version, b.step, b.epoch = v, step, epoch
}

func (b *statusBoard) trainedThrough(next uint64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.next = next
}

// depth is the number of logged rollouts not yet trained on, given the log's next index.
func (b *statusBoard) depth(logNext uint64) uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return logNext - min(b.next, logNext)
}

// stepped records one optimizer step over batch.
func (b *statusBoard) stepped(st StepStats, batch []*tsdv1.Rollout) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.step, b.lr = st.Step, st.LR
	b.losses = map[string]float64{
		"loss/policy": st.Loss.Policy, "loss/value": st.Loss.Value, "loss/kl": st.Loss.KL,
		"loss/entropy": st.Loss.Entropy, "loss/total": st.Loss.Total, "grad/norm": st.GradNorm,
		"clip/fraction": st.ClipFraction, "policy/approx_kl": st.ApproxKL, "value/mean": st.ValueMean,
	}
	for _, r := range batch {
		for _, s := range r.GetSamples() {
			b.reward.add(float64(s.GetReward()))
			b.length.add(float64(len(s.GetCompletionIds())))
			b.correct.add(boolFloat(s.GetCorrect()))
		}
	}
	b.trained += uint64(len(batch))
	b.steps = append(b.steps, stepMark{at: time.Now(), rollouts: len(batch), tokens: st.Tokens})
	if len(b.steps) > rateWindow {
		b.steps = b.steps[1:]
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// connected and disconnected track actor streams; acked counts their rollouts. An actor is
// listed while it has a stream open; its counters cover its streams since it was last unlisted.
func (b *statusBoard) connected(actor string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.streams[actor]++
	now := time.Now().UnixMilli()
	if a, ok := b.actors[actor]; ok {
		a.ConnectedUnixMs = now
		return
	}
	b.actors[actor] = &tsdv1.ActorStatus{ActorId: actor, ConnectedUnixMs: now}
}

func (b *statusBoard) disconnected(actor string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.streams[actor]--; b.streams[actor] <= 0 {
		delete(b.streams, actor)
		delete(b.actors, actor)
	}
}

func (b *statusBoard) acked(r *tsdv1.Rollout) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if a, ok := b.actors[r.GetActorId()]; ok {
		a.Rollouts++
		a.LastSeq = r.GetSeq()
		a.PolicyVersion = r.GetPolicyVersion()
	}
}

// snapshot assembles a StatusResponse; logNext is the index the write-ahead log gives next.
func (b *statusBoard) snapshot(c Counts, logNext uint64) *tsdv1.StatusResponse {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := &tsdv1.StatusResponse{
		RunId: b.runID, LearnerId: b.id, Algo: b.algo, Step: uint64(b.step), Version: b.version, Epoch: b.epoch,
		Losses: map[string]float64{}, Reward: b.reward.stats(), Length: b.length.stats(),
		CorrectRate: b.correct.stats().GetMean(), BufferDepth: logNext - min(b.next, logNext),
		Staleness: c.Staleness, Rejected: c.Rejected, RolloutsAccepted: c.Accepted, RolloutsTrained: b.trained,
		UptimeMs: time.Since(b.start).Milliseconds(), Lr: b.lr,
	}
	for k, v := range b.losses {
		s.Losses[k] = v
	}
	for _, a := range b.actors {
		s.Actors = append(s.Actors, &tsdv1.ActorStatus{ActorId: a.ActorId, LastSeq: a.LastSeq, Rollouts: a.Rollouts,
			PolicyVersion: a.PolicyVersion, ConnectedUnixMs: a.ConnectedUnixMs})
	}
	if n := len(b.steps); n >= 2 {
		secs := b.steps[n-1].at.Sub(b.steps[0].at).Seconds()
		var rollouts, tokens int
		for _, m := range b.steps[1:] {
			rollouts += m.rollouts
			tokens += m.tokens
		}
		if secs > 0 {
			s.RolloutsPerSec, s.TokensPerSec = float64(rollouts)/secs, float64(tokens)/secs
		}
	}
	return s
}

// ring keeps the last n values.
type ring struct {
	vals []float64
	next int
	full bool
}

func newRing(n int) ring { return ring{vals: make([]float64, n)} }

func (r *ring) add(v float64) {
	r.vals[r.next] = v
	r.next = (r.next + 1) % len(r.vals)
	r.full = r.full || r.next == 0
}

func (r *ring) stats() *tsdv1.Stats {
	n := r.next
	if r.full {
		n = len(r.vals)
	}
	if n == 0 {
		return &tsdv1.Stats{}
	}
	s := &tsdv1.Stats{Min: math.Inf(1), Max: math.Inf(-1), Count: uint64(n)}
	for _, v := range r.vals[:n] {
		s.Mean += v
		s.Min = math.Min(s.Min, v)
		s.Max = math.Max(s.Max, v)
	}
	s.Mean /= float64(n)
	for _, v := range r.vals[:n] {
		s.Std += (v - s.Mean) * (v - s.Mean)
	}
	s.Std = math.Sqrt(s.Std / float64(n))
	return s
}
