package learner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"tsd/coordinator"
	"tsd/model"
	"tsd/optim"
	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rolloutlog"
	"tsd/weights"
)

// Service is the learner: it admits rollouts into its write-ahead log, trains on them in log
// order, checkpoints, and publishes versions to the coordinator under its fencing epoch.
//
// Exactly-once training: a checkpoint records the log index of the next record to train on. After
// a crash the learner resumes from its last checkpoint and trains again on the records after that
// index; the steps it took past the checkpoint were lost with it, so no rollout is in the weights
// twice, and no acked rollout is missing (acks follow fsync).
//
// Publishing: the checkpoint (naming the version it is about to publish) is written first, then
// the weights go into the version store, then the version goes to the coordinator. A crash between
// the first and the last step is finished on restart by publishing the checkpoint's version again
// (same weights, same digest).
type Service struct {
	cfg     ServiceConfig
	train   Config
	log     *slog.Logger
	coord   *coordinator.Client
	wal     *rolloutlog.Log
	store   *weights.Store
	ingest  *Ingest
	status  *statusBoard
	trainer *Trainer
	ref     *model.Qwen2
	cur     cursor
	epoch   uint64
	ledger  *ledger
}

// cursor is the learner's own part of a trainer checkpoint.
type cursor struct {
	Next    uint64 `json:"next"`    // log index of the next record to train on
	Version uint64 `json:"version"` // the version these weights are published as
}

// ErrFenced means another learner holds the run now; this one must stop.
var ErrFenced = errors.New("learner fenced")

// Open prepares a learner: the write-ahead log, the version store, the trainer (resumed from its
// checkpoint when there is one), the lease, and any publish a crash left unfinished. It does tensor
// work on the calling goroutine.
func Open(ctx context.Context, cfg ServiceConfig, train Config, coord *coordinator.Client, log *slog.Logger) (_ *Service, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := train.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxBuffer > 0 && cfg.MaxBuffer < train.GlobalBatch {
		// Credits stop at MaxBuffer untrained rollouts and training waits for a whole batch: with
		// less than a batch allowed, actors and learner could both wait for good.
		return nil, fmt.Errorf("%w: max buffer %d < global batch %d", ErrConfig, cfg.MaxBuffer, train.GlobalBatch)
	}
	s := &Service{cfg: cfg, train: train, log: log, coord: coord, status: newStatusBoard(cfg, train)}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.wal, err = rolloutlog.Open(filepath.Join(cfg.DataDir, "wal"), rolloutlog.Options{NoSync: !cfg.SyncLog, Logger: log}); err != nil {
		return nil, err
	}
	if s.store, err = weights.OpenStore(filepath.Join(cfg.DataDir, "versions")); err != nil {
		return nil, err
	}
	if err := s.openTrainer(); err != nil {
		return nil, err
	}
	if s.ledger, err = openLedger(filepath.Join(cfg.DataDir, "trained.jsonl"), s.trainer.Steps(), log); err != nil {
		return nil, err
	}
	s.ingest = NewIngest(s.wal, s.trainer.CheckRollout, cfg.MaxLag, cfg.MaxCompletionTokens)
	if err := s.acquire(ctx); err != nil {
		return nil, err
	}
	if err := removeLeftovers(cfg.DataDir, log); err != nil {
		return nil, err
	}
	s.ingest.SetVersion(s.cur.Version)
	s.status.setVersion(s.cur.Version, s.trainer.Steps(), s.epoch)
	s.status.trainedThrough(s.cur.Next)
	return s, nil
}

// Temporary directories in the data dir: a checkpoint being written (Trainer.Save names it after
// the checkpoint directory) and a version being exported. A crash leaves them behind, each as
// large as the model.
const (
	checkpointDirName = "checkpoint"
	checkpointTmp     = "." + checkpointDirName + ".tmp-"
	exportTmp         = ".export-"
)

func (s *Service) checkpointDir() string { return filepath.Join(s.cfg.DataDir, checkpointDirName) }

// removeLeftovers deletes the temporary directories a crash left in dataDir. Open calls it once
// it holds the lease and has finished its own exports, so none of them is in use.
func removeLeftovers(dataDir string, log *slog.Logger) error {
	entries, err := os.ReadDir(dataDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, checkpointTmp) && !strings.HasPrefix(name, exportTmp) {
			continue
		}
		path := filepath.Join(dataDir, name)
		if err := os.RemoveAll(path); err != nil {
			return fmt.Errorf("removing a crash's leftover %s: %w", path, err)
		}
		log.Info("removed a leftover of an earlier crash", "path", path)
	}
	return nil
}

// openTrainer resumes from the checkpoint, or starts from the initial model.
func (s *Service) openTrainer() (err error) {
	opts := model.Options{Device: s.cfg.Device}
	if s.train.KLCoef > 0 {
		if s.ref, err = model.Load(s.cfg.InitModel, opts); err != nil {
			return err
		}
	}
	if _, statErr := os.Stat(s.checkpointDir()); statErr == nil {
		var raw json.RawMessage
		if s.trainer, raw, err = Resume(s.checkpointDir(), s.ref, s.train, opts); err != nil {
			return fmt.Errorf("resume from %s: %w", s.checkpointDir(), err)
		}
		if err := json.Unmarshal(raw, &s.cur); err != nil {
			return fmt.Errorf("resume: checkpoint cursor %s: %w", raw, err)
		}
		s.log.Info("resumed", "step", s.trainer.Steps(), "version", s.cur.Version, "next_record", s.cur.Next)
		return nil
	}
	opts.Trainable = true
	policy, err := model.Load(s.cfg.InitModel, opts)
	if err != nil {
		return err
	}
	if s.trainer, err = NewTrainer(policy, s.ref, s.train); err != nil {
		policy.Close()
		return err
	}
	s.cur = cursor{Next: s.wal.First()}
	return nil
}

// runConfig names the run's configuration: the training config and the initial weights' digest.
func (s *Service) runConfig() (*tsdv1.RunConfig, error) {
	init, err := weights.Manifest(s.cfg.InitModel, 0)
	if err != nil {
		return nil, fmt.Errorf("initial model: %w", err)
	}
	cfg, err := json.Marshal(map[string]any{"train": s.train, "init_model_sha256": init.GetSha256(),
		"max_lag": s.cfg.MaxLag, "publish_every": s.cfg.PublishEvery})
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(cfg)
	return &tsdv1.RunConfig{RunId: s.cfg.RunID, ConfigSha256: hex.EncodeToString(sum[:]), ConfigJson: cfg}, nil
}

// acquire takes the learner lease and reconciles the checkpoint with the coordinator's record.
func (s *Service) acquire(ctx context.Context) error {
	run, err := s.runConfig()
	if err != nil {
		return err
	}
	resp, err := s.coord.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{
		LearnerId: s.cfg.ID, Addr: s.cfg.Addr, Run: run, TtlMs: s.cfg.LeaseTTL.Milliseconds()})
	if err != nil {
		return fmt.Errorf("learner lease: %w", err)
	}
	s.epoch = resp.GetLease().GetEpoch()
	latest := resp.GetLatest().GetVersion()
	s.log.Info("learner lease acquired", "epoch", s.epoch, "coordinator_version", latest, "checkpoint_version", s.cur.Version)
	switch {
	case latest == s.cur.Version:
		return s.ensureStored(s.cur.Version)
	case s.cur.Version > 0 && latest == s.cur.Version-1:
		s.log.Warn("finishing a publish a crash interrupted", "version", s.cur.Version)
		return s.publishStored(ctx, s.cur.Version)
	default:
		return fmt.Errorf("the coordinator is at version %d but this learner's checkpoint is at %d: another learner trained this run (use its data dir, or a new run id)", latest, s.cur.Version)
	}
}

// ensureStored makes sure the version store can serve version v (the checkpoint's weights).
func (s *Service) ensureStored(v uint64) error {
	if v == 0 || s.store.Has(v) {
		return nil
	}
	_, err := s.export(v)
	return err
}

// export writes the policy's weights (and the tokenizer) as version v into the store.
func (s *Service) export(v uint64) (*tsdv1.WeightManifest, error) {
	tmp, err := os.MkdirTemp(s.cfg.DataDir, exportTmp)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := s.trainer.SaveWeights(tmp, s.cfg.PublishDType); err != nil {
		return nil, err
	}
	for _, name := range []string{"tokenizer.json", "tokenizer_config.json"} {
		b, err := os.ReadFile(filepath.Join(s.cfg.InitModel, name))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o644); err != nil {
			return nil, err
		}
	}
	return s.store.Put(v, tmp)
}

// publishStored sends version v, already in the store, to the coordinator.
func (s *Service) publishStored(ctx context.Context, v uint64) error {
	if err := s.ensureStored(v); err != nil {
		return err
	}
	man, err := s.store.Get(v)
	if err != nil {
		return err
	}
	var size int64
	for _, f := range man.GetFiles() {
		size += f.GetSize()
	}
	pv := &tsdv1.PolicyVersion{
		Version: v, Step: uint64(s.trainer.Steps()), Sha256: man.GetSha256(), SizeBytes: size,
		FetchAddr: s.cfg.Addr, CreatedUnixMs: time.Now().UnixMilli(), LearnerEpoch: s.epoch}
	_, err = s.coord.PublishVersion(ctx, pv)
	for errors.Is(err, coordinator.ErrLeaseExpired) {
		// The lease lapsed while the coordinators could not be reached (or answer). Lapsed is
		// not lost: unless another learner acquired it since, the epoch is still ours to renew.
		// (Renew and publish again for as long as outages keep outlasting the lease.)
		s.log.Warn("the learner lease lapsed; renewing it before publishing", "version", v, "epoch", s.epoch, "err", err)
		if err = s.renew(ctx); err == nil {
			_, err = s.coord.PublishVersion(ctx, pv)
		}
	}
	if errors.Is(err, coordinator.ErrFenced) || errors.Is(err, coordinator.ErrLeaseHeld) {
		return fmt.Errorf("%w: %v", ErrFenced, err)
	}
	if err != nil {
		return fmt.Errorf("publish version %d: %w", v, err)
	}
	s.ingest.SetVersion(v)
	s.status.setVersion(v, s.trainer.Steps(), s.epoch)
	s.log.Info("published", "version", v, "step", s.trainer.Steps(), "sha256", man.GetSha256()[:12], "bytes", size)
	if _, err := s.store.Keep(s.cfg.KeepVersions); err != nil {
		s.log.Warn("pruning old versions", "err", err)
	}
	return nil
}

// publish checkpoints the trainer as version v, then publishes v.
func (s *Service) publish(ctx context.Context, v uint64) error {
	s.cur.Version = v
	raw, err := json.Marshal(s.cur)
	if err != nil {
		return err
	}
	if err := s.ledger.sync(); err != nil { // entries up to this step are durable before the checkpoint
		return err
	}
	if err := s.trainer.Save(s.checkpointDir(), raw); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if _, err := s.export(v); err != nil {
		return fmt.Errorf("export version %d: %w", v, err)
	}
	if err := s.publishStored(ctx, v); err != nil {
		return err
	}
	// Records before the checkpoint's cursor are in the weights for good.
	if err := s.wal.TruncateBefore(s.cur.Next); err != nil {
		s.log.Warn("truncating the write-ahead log", "err", err)
	}
	return nil
}

// Run trains until ctx ends, MaxSteps is reached, or the lease is lost. It does all tensor work on
// the calling goroutine.
func (s *Service) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go s.keepLease(ctx, cancel)
	for s.cfg.MaxSteps == 0 || s.trainer.Steps() < s.cfg.MaxSteps {
		batch, next, err := s.nextBatch(ctx)
		if err != nil {
			return s.stopped(ctx, err)
		}
		st, err := s.trainer.Step(batch)
		s.cur.Next = next
		if err == nil {
			s.ledger.add(s.trainer.Steps(), batch)
		}
		s.status.trainedThrough(next)
		switch {
		case errors.Is(err, optim.ErrNonFinite):
			// The weights did not change: nothing to record or publish (the step count did not
			// move, so the publish test below would fire again for the last published step).
			s.log.Warn("skipped a step with a non-finite gradient", "step", s.trainer.Steps())
			continue
		case err != nil:
			return err
		}
		s.status.stepped(st, batch)
		if s.trainer.Steps()%int64(s.cfg.PublishEvery) == 0 {
			if err := s.publish(ctx, s.cur.Version+1); err != nil {
				return s.stopped(ctx, err)
			}
		}
	}
	if s.trainer.Steps()%int64(s.cfg.PublishEvery) != 0 {
		return s.publish(ctx, s.cur.Version+1)
	}
	return nil
}

// stopped turns a cancellation back into its cause.
func (s *Service) stopped(ctx context.Context, err error) error {
	if cause := context.Cause(ctx); cause != nil && ctx.Err() != nil {
		return cause
	}
	return err
}

// nextBatch waits for rollouts after the cursor until they hold GlobalBatch samples (or a group
// too large to share a batch), and returns them with the index after the last.
func (s *Service) nextBatch(ctx context.Context) ([]*tsdv1.Rollout, uint64, error) {
	var batch []*tsdv1.Rollout
	next, samples := s.cur.Next, 0
	for samples < s.train.GlobalBatch {
		if err := s.wal.Wait(ctx, next); err != nil {
			return nil, 0, err
		}
		recs, err := s.wal.Read(next, s.train.GlobalBatch)
		if err != nil {
			return nil, 0, err
		}
		for _, r := range recs {
			n := len(r.Rollout.GetSamples())
			if samples > 0 && samples+n > s.train.GlobalBatch {
				return batch, next, nil
			}
			batch = append(batch, r.Rollout)
			samples += n
			next = r.Index + 1
		}
	}
	return batch, next, nil
}

// keepLease renews the lease every third of its TTL; losing it cancels the run.
func (s *Service) keepLease(ctx context.Context, cancel context.CancelCauseFunc) {
	t := time.NewTicker(s.cfg.LeaseTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rctx, done := context.WithTimeout(ctx, s.cfg.LeaseTTL/3)
		err := s.renew(rctx)
		done()
		switch {
		case errors.Is(err, coordinator.ErrFenced) || errors.Is(err, coordinator.ErrLeaseHeld):
			s.log.Error("lost the learner lease", "err", err)
			cancel(fmt.Errorf("%w: %v", ErrFenced, err))
			return
		case err != nil && ctx.Err() == nil:
			s.log.Warn("renewing the learner lease", "err", err)
		}
	}
}

// renew extends this epoch's lease, lapsed or not. The coordinator refuses (ErrFenced) only when
// another learner acquired the lease since, which moved the epoch.
func (s *Service) renew(ctx context.Context) error {
	_, err := s.coord.RenewLearnerLease(ctx, s.cfg.ID, s.epoch, s.cfg.LeaseTTL)
	return err
}

// hasRoom reports whether the buffer of untrained rollouts is below MaxBuffer.
func (s *Service) hasRoom() bool {
	return s.cfg.MaxBuffer == 0 || s.status.depth(s.wal.Next()) < uint64(s.cfg.MaxBuffer)
}

// Ingest is the service's intake, for the gRPC adapter.
func (s *Service) Ingest() *Ingest { return s.ingest }

// Store is the version store, served by the Weights service.
func (s *Service) Store() *weights.Store { return s.store }

// Status reports the learner's state.
func (s *Service) Status() *tsdv1.StatusResponse {
	return s.status.snapshot(s.ingest.Counts(), s.wal.Next())
}

// Close frees the trainer, the reference model, the log and the store.
func (s *Service) Close() {
	if s.trainer != nil {
		s.trainer.Close()
		s.trainer = nil
	}
	if s.ref != nil {
		s.ref.Close()
		s.ref = nil
	}
	if s.wal != nil {
		s.wal.Close()
		s.wal = nil
	}
	if s.ledger != nil {
		s.ledger.close()
		s.ledger = nil
	}
}
