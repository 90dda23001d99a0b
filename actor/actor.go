package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"

	"tsd/algo"
	"tsd/coordinator"
	"tsd/countdown"
	"tsd/episode"
	"tsd/hub"
	"tsd/mcts"
	"tsd/model"
	"tsd/policy"
	"tsd/proto/tsd/v1"
	"tsd/rolloutstream"
	"tsd/tensor"
	"tsd/tokenizer"
	"tsd/weights"
)

// Actor produces rollouts with the newest policy it has and streams them to the learner (see
// doc.go for its duties).
type Actor struct {
	cfg      Config
	log      *slog.Logger
	coord    *coordinator.Client
	dial     func(addr string) (*grpc.ClientConn, error)
	worker   *tensor.Worker
	store    *weights.Store
	sender   *rolloutstream.Sender
	problems []countdown.Problem
	tok      *tokenizer.BPE
	producer *Producer

	pol     atomic.Pointer[policy.Policy]
	loaded  *weights.Handle // keeps the loaded version on disk (nil for version 0); produce's goroutine
	learner atomic.Value    // string: the learner's address, from the coordinator
	ready   chan *tsdv1.PolicyVersion
	stats   stats
	start   time.Time

	connsMu sync.Mutex
	conns   map[string]*grpc.ClientConn
}

// stats are the actor's own counters.
type stats struct {
	mu        sync.Mutex
	rollouts  uint64
	tokens    uint64
	rewardSum float64
	rewardN   int
}

// New prepares an actor; dial opens gRPC connections to the learner and peers.
func New(cfg Config, coord *coordinator.Client, dial func(addr string) (*grpc.ClientConn, error), log *slog.Logger) (*Actor, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	problems, err := countdown.Load(cfg.Problems)
	if err != nil {
		return nil, err
	}
	if len(problems) == 0 {
		return nil, fmt.Errorf("%w: %s has no problems", ErrConfig, cfg.Problems)
	}
	store, err := weights.OpenStore(filepath.Join(cfg.DataDir, "versions"))
	if err != nil {
		return nil, err
	}
	a := &Actor{cfg: cfg, log: log, coord: coord, dial: dial, store: store, problems: problems,
		ready: make(chan *tsdv1.PolicyVersion, 1), start: time.Now(), conns: map[string]*grpc.ClientConn{}}
	a.learner.Store("")
	a.sender = rolloutstream.NewSender(cfg.ID, a.learnerClient, cfg.Queue, log)
	return a, nil
}

// Store is the actor's version store (served to peers by the Weights service).
func (a *Actor) Store() *weights.Store { return a.store }

// Run registers, loads the newest policy, and produces rollouts until ctx ends or MaxRollouts.
func (a *Actor) Run(ctx context.Context) error {
	reg, err := a.coord.RegisterActor(ctx, a.cfg.ID, a.cfg.Addr, a.cfg.LeaseTTL)
	if err != nil {
		return fmt.Errorf("register: %w", err)
	}
	a.learner.Store(reg.GetLearner().GetAddr())
	a.worker = tensor.NewWorker()
	defer a.worker.Close()
	if err := a.loadFirst(ctx, reg.GetLatest()); err != nil {
		return err
	}
	defer func() {
		a.pol.Load().Close()
		if a.loaded != nil {
			a.loaded.Release()
		}
	}()
	a.prune()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	batcher, err := mcts.NewBatcher(stepper{a}, a.cfg.Batch)
	if err != nil {
		return err
	}
	for _, f := range []func(context.Context){a.heartbeats, a.watch, func(ctx context.Context) { a.sender.Run(ctx) }, func(ctx context.Context) { batcher.Run(ctx) }} {
		wg.Add(1)
		go func() { defer wg.Done(); f(ctx) }()
	}
	err = a.produce(ctx, batcher)
	if err == nil {
		a.drain(ctx)
	}
	cancel()
	wg.Wait()
	dctx, done := context.WithTimeout(context.Background(), 2*time.Second)
	defer done()
	a.coord.DeregisterActor(dctx, a.cfg.ID) //nolint:errcheck // the lease expires anyway
	a.closeConns()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// stepper hands the search's model calls to the current policy.
type stepper struct{ a *Actor }

func (s stepper) Step(ctx context.Context, reqs []mcts.StepRequest) ([]mcts.StepResult, error) {
	return s.a.pol.Load().Step(ctx, reqs)
}

// produce runs waves of problems until ctx ends or MaxRollouts are made, swapping in new weights
// between waves.
func (a *Actor) produce(ctx context.Context, batcher mcts.Stepper) error {
	rng := rand.New(rand.NewPCG(uint64(a.cfg.Seed), hashString(a.cfg.ID)))
	order := rng.Perm(len(a.problems))
	made := 0
	for i := 0; a.cfg.MaxRollouts == 0 || made < a.cfg.MaxRollouts; {
		a.swapIfReady(ctx)
		n := a.cfg.Wave
		if a.cfg.MaxRollouts > 0 {
			n = min(n, a.cfg.MaxRollouts-made)
		}
		tasks := make([]Task, n)
		for j := range tasks {
			k := order[i%len(order)]
			i++
			t := a.cfg.Style.Task(a.problems[k])
			tasks[j] = Task{ID: fmt.Sprintf("%s:%d", filepath.Base(a.cfg.Problems), k), Task: t, Prompt: episode.Prompt(a.tok, t)}
		}
		rollouts, err := a.producer.Produce(ctx, a.pol.Load(), batcher, tasks)
		if err != nil {
			return err
		}
		for _, r := range rollouts {
			a.stats.add(r)
			if err := a.sender.Send(ctx, r); err != nil {
				return err
			}
		}
		made += len(rollouts)
	}
	return nil
}

// drain waits (a while) until the learner acknowledged everything sent.
func (a *Actor) drain(ctx context.Context) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if _, _, pending, _ := a.sender.Counts(); pending == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stats) add(r *tsdv1.Rollout) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rollouts++
	s.tokens += uint64(r.GetGeneratedTokens())
	for _, smp := range r.GetSamples() {
		s.rewardSum += float64(smp.GetReward())
		s.rewardN++
	}
}

// loadFirst loads the newest published version, or the initial model when there is none yet. A
// version pruned while it is fetched is no reason to stop: the newest one is fetched instead.
func (a *Actor) loadFirst(ctx context.Context, latest *tsdv1.PolicyVersion) error {
	dir, version := "", uint64(0)
	if latest.GetVersion() > 0 {
		newest := func(ctx context.Context) (weights.Target, error) {
			if latest == nil { // every later round asks the coordinator again
				var err error
				if latest, err = a.coord.GetVersion(ctx, 0); err != nil {
					return weights.Target{}, err
				}
			}
			pv := latest
			latest = nil
			sources, err := a.sources(ctx, pv)
			return weights.Target{Version: pv.GetVersion(), SHA256: pv.GetSha256(), Size: pv.GetSizeBytes(), Sources: sources}, err
		}
		retry := func(t weights.Target, err error) {
			a.log.Warn("no source could provide the version; fetching the newest instead", "version", t.Version, "err", err)
		}
		m, err := weights.FetchNewest(ctx, newest, a.store, a.fetchOptions(0), retry)
		if err != nil {
			return err
		}
		if a.loaded, err = a.store.Acquire(m.GetVersion()); err != nil {
			return err
		}
		dir, version = a.loaded.Dir, m.GetVersion()
	} else {
		var err error
		if dir, err = hub.Resolve(ctx, a.cfg.InitModel, hub.Options{}); err != nil {
			return err
		}
	}
	tok, err := tokenizer.Load(dir)
	if err != nil {
		return err
	}
	a.tok = tok
	a.producer = &Producer{cfg: a.cfg, tok: tok}
	pol, err := a.load(ctx, dir, version)
	if err != nil {
		return err
	}
	a.pol.Store(pol)
	a.log.Info("policy loaded", "version", version, "dir", dir)
	return nil
}

// load reads a model directory onto the actor's worker.
func (a *Actor) load(ctx context.Context, dir string, version uint64) (*policy.Policy, error) {
	pol, err := policy.Open(ctx, dir, policy.Options{Model: model.Options{Device: a.cfg.Device}, Tokenizer: a.tok, Worker: a.worker, Version: version})
	if err != nil {
		return nil, fmt.Errorf("load version %d: %w", version, err)
	}
	return pol, nil
}

// swapIfReady installs the newest fetched version (between waves, so each search uses one).
func (a *Actor) swapIfReady(ctx context.Context) {
	select {
	case pv := <-a.ready:
		if pv.GetVersion() <= a.pol.Load().Version() {
			return
		}
		h, err := a.store.Acquire(pv.GetVersion()) // a newer fetch may have pruned it
		if err != nil {
			a.log.Debug("a fetched version is gone; waiting for the next", "version", pv.GetVersion(), "err", err)
			return
		}
		pol, err := a.load(ctx, h.Dir, pv.GetVersion())
		if err != nil {
			h.Release()
			a.log.Error("loading new weights; keeping the old", "version", pv.GetVersion(), "err", err)
			return
		}
		old := a.pol.Swap(pol)
		old.Close()
		if a.loaded != nil {
			a.loaded.Release()
		}
		a.loaded = h
		a.log.Info("policy swapped", "version", pv.GetVersion())
		a.prune()
	default:
	}
}

// watch fetches every version the coordinator announces and offers the newest to the producer.
func (a *Actor) watch(ctx context.Context) {
	after := a.pol.Load().Version()
	err := a.coord.WatchVersions(ctx, after, func(pv *tsdv1.PolicyVersion) error {
		if err := a.fetch(ctx, pv); err != nil {
			a.log.Warn("fetching weights", "version", pv.GetVersion(), "err", err)
			return nil // a later version will do
		}
		a.prune()
		select { // keep only the newest
		case old := <-a.ready:
			if old.GetVersion() > pv.GetVersion() {
				pv = old
			}
		default:
		}
		a.ready <- pv
		return nil
	})
	if err != nil && ctx.Err() == nil {
		a.log.Error("watching versions stopped", "err", err)
	}
}

// fetch makes pv present in the store, from peers that hold it or the learner.
func (a *Actor) fetch(ctx context.Context, pv *tsdv1.PolicyVersion) error {
	sources, err := a.sources(ctx, pv)
	if err != nil {
		return err
	}
	start := time.Now()
	if _, err = weights.Fetch(ctx, sources, pv.GetVersion(), pv.GetSha256(), a.store, a.fetchOptions(pv.GetSizeBytes())); err != nil {
		return err
	}
	a.log.Info("weights fetched", "version", pv.GetVersion(), "from", sources[0].Name, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// sources are where the coordinator says pv can be fetched: peers that hold it, then the learner.
func (a *Actor) sources(ctx context.Context, pv *tsdv1.PolicyVersion) ([]weights.Source, error) {
	addrs, err := a.coord.WeightSource(ctx, a.cfg.ID, pv.GetVersion())
	if err != nil {
		return nil, err
	}
	var sources []weights.Source
	for _, addr := range addrs {
		if addr == a.cfg.Addr {
			continue
		}
		conn, err := a.conn(addr)
		if err != nil {
			return nil, err
		}
		sources = append(sources, weights.Source{Name: addr, Client: tsdv1.NewWeightsClient(conn)})
	}
	if len(sources) == 0 {
		return nil, fmt.Errorf("the coordinator names no source for version %d but this actor", pv.GetVersion())
	}
	return sources, nil
}

// fetchOptions log each failed stream; a source that sent corrupt bytes is named once, at WARN,
// since Fetch does not ask it again for that version.
func (a *Actor) fetchOptions(maxBytes int64) weights.FetchOptions {
	return weights.FetchOptions{
		MaxBytes: maxBytes,
		OnError: func(src string, err error) {
			if errors.Is(err, weights.ErrCorruptChunk) || errors.Is(err, weights.ErrDigest) {
				a.log.Warn("weight source sent corrupt bytes; not asking it again for this version", "source", src, "err", err)
				return
			}
			a.log.Warn("weight stream failed", "source", src, "err", err)
		},
	}
}

// prune deletes all but the newest KeepVersions versions from the store; Keep spares the loaded
// one (a.loaded holds it) and any a peer is fetching (the Weights server holds those).
func (a *Actor) prune() {
	removed, err := a.store.Keep(a.cfg.KeepVersions)
	if err != nil {
		a.log.Warn("pruning old versions", "err", err)
	}
	if len(removed) > 0 {
		a.log.Debug("pruned old versions", "removed", removed, "kept", a.store.Versions())
	}
}

// heartbeats renew the lease, report the version this actor can serve, and follow the learner.
func (a *Actor) heartbeats(ctx context.Context) {
	t := time.NewTicker(a.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		held := uint64(0)
		if vs := a.store.Versions(); len(vs) > 0 {
			held = vs[len(vs)-1]
		}
		hctx, done := context.WithTimeout(ctx, a.cfg.LeaseTTL/3)
		resp, err := a.coord.Heartbeat(hctx, a.cfg.ID, held, a.cfg.LeaseTTL)
		if errors.Is(err, coordinator.ErrUnknownActor) { // the lease lapsed: register again
			var reg *tsdv1.RegisterActorResponse
			if reg, err = a.coord.RegisterActor(hctx, a.cfg.ID, a.cfg.Addr, a.cfg.LeaseTTL); err == nil {
				a.learner.Store(reg.GetLearner().GetAddr())
			}
		} else if err == nil {
			a.learner.Store(resp.GetLearner().GetAddr())
		}
		done()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("heartbeat", "err", err)
		}
	}
}

// learnerClient dials the learner the coordinator names.
func (a *Actor) learnerClient(ctx context.Context) (tsdv1.LearnerClient, error) {
	addr, _ := a.learner.Load().(string)
	if addr == "" {
		return nil, errors.New("no learner holds the lease yet")
	}
	conn, err := a.conn(addr)
	if err != nil {
		return nil, err
	}
	return tsdv1.NewLearnerClient(conn), nil
}

// conn returns a cached connection to addr.
func (a *Actor) conn(addr string) (*grpc.ClientConn, error) {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	if c, ok := a.conns[addr]; ok {
		return c, nil
	}
	c, err := a.dial(addr)
	if err != nil {
		return nil, err
	}
	a.conns[addr] = c
	return c, nil
}

func (a *Actor) closeConns() {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	for k, c := range a.conns {
		c.Close()
		delete(a.conns, k)
	}
}

// Status reports what the actor is doing.
func (a *Actor) Status() *tsdv1.ActorStatusResponse {
	counts, credits, pending, _ := a.sender.Counts()
	a.stats.mu.Lock()
	defer a.stats.mu.Unlock()
	up := time.Since(a.start)
	s := &tsdv1.ActorStatusResponse{
		ActorId: a.cfg.ID, Algo: algo.Rollout(a.cfg.Algo).Wire(), RolloutsSent: counts.Sent, RolloutsAcked: counts.Acked,
		RolloutsRejected: counts.Rejected, LastSeq: counts.LastSeq, Credits: credits, Pending: uint64(pending),
		RolloutsPerSec: float64(a.stats.rollouts) / up.Seconds(), TokensPerSec: float64(a.stats.tokens) / up.Seconds(),
		UptimeMs: up.Milliseconds(),
	}
	s.LearnerAddr, _ = a.learner.Load().(string)
	if p := a.pol.Load(); p != nil {
		s.PolicyVersion = p.Version()
	}
	if a.stats.rewardN > 0 {
		s.RewardMean = a.stats.rewardSum / float64(a.stats.rewardN)
	}
	return s
}
