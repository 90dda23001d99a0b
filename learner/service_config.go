package learner

import (
	"fmt"
	"time"

	"github.com/sugarme/gotch"
)

// ServiceConfig configures the learner service (the network half; Config is the algorithm).
type ServiceConfig struct {
	// ID names this learner process at the coordinator; Addr is where actors reach its Learner and
	// Weights services (advertised, so it must be reachable from the actors).
	ID, Addr string
	// RunID names the run. The coordinator refuses a learner whose training config differs from
	// the run's first learner's.
	RunID string
	// DataDir holds the write-ahead log (wal/), the trainer checkpoint (checkpoint/) and the
	// published versions (versions/).
	DataDir string
	// InitModel is the initial checkpoint (a Hugging Face model directory with its tokenizer.json):
	// the policy at version 0 and the frozen KL reference.
	InitModel string
	Device    gotch.Device
	// MaxLag is the most versions a rollout may be behind the current one and still be admitted.
	MaxLag uint64
	// PublishEvery is the number of optimizer steps between published versions (the source: 8).
	PublishEvery int
	// KeepVersions is how many published versions the learner keeps serving.
	KeepVersions int
	// PublishDType is the dtype of published weights: gotch.Float or gotch.BFloat16.
	PublishDType gotch.DType
	// Credits is how many unacknowledged rollouts one actor stream may have in flight.
	Credits uint32
	// MaxBuffer is how many admitted but untrained rollouts the learner lets pile up before it
	// stops returning credits (0: no limit). It keeps rollouts from going stale in the buffer.
	MaxBuffer int
	// MaxCompletionTokens bounds one sample's completion.
	MaxCompletionTokens int
	// LeaseTTL is the learner lease's lifetime; it is renewed every third of it.
	LeaseTTL time.Duration
	// MaxSteps stops training after this many optimizer steps (0: run until cancelled).
	MaxSteps int64
	// SyncLog fsyncs the write-ahead log before acking (turn off only in tests and benchmarks).
	SyncLog bool
}

// DefaultServiceConfig returns the defaults: publish every 8 steps (the source), max lag 4.
func DefaultServiceConfig() ServiceConfig {
	return ServiceConfig{Device: gotch.CPU, MaxLag: 4, PublishEvery: 8, KeepVersions: 3, PublishDType: gotch.Float,
		Credits: 32, MaxBuffer: 128, MaxCompletionTokens: 2048, LeaseTTL: 10 * time.Second, SyncLog: true}
}

// Validate reports the first unusable setting.
func (c ServiceConfig) Validate() error {
	switch {
	case c.ID == "" || c.Addr == "" || c.RunID == "":
		return fmt.Errorf("%w: learner id, advertised address and run id are required", ErrConfig)
	case c.DataDir == "" || c.InitModel == "":
		return fmt.Errorf("%w: data dir and initial model are required", ErrConfig)
	case c.PublishEvery < 1 || c.KeepVersions < 1 || c.Credits < 1 || c.MaxCompletionTokens < 1:
		return fmt.Errorf("%w: publish-every, keep-versions, credits and max completion tokens must be ≥ 1", ErrConfig)
	case c.PublishDType != gotch.Float && c.PublishDType != gotch.BFloat16:
		return fmt.Errorf("%w: publish dtype must be f32 or bf16", ErrConfig)
	case c.LeaseTTL < time.Second:
		return fmt.Errorf("%w: lease ttl %v < 1s", ErrConfig, c.LeaseTTL)
	case c.MaxBuffer < 0:
		return fmt.Errorf("%w: max buffer %d < 0", ErrConfig, c.MaxBuffer)
	case c.MaxSteps < 0:
		return fmt.Errorf("%w: max steps %d < 0", ErrConfig, c.MaxSteps)
	}
	return nil
}
