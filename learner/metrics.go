package learner

import (
	"github.com/prometheus/client_golang/prometheus"
)

// RegisterMetrics exports the learner's state to Prometheus under stable names (tsd_learner_*),
// read from the same snapshot the Status RPC returns.
func (s *Service) RegisterMetrics(reg prometheus.Registerer) error {
	gauges := []struct {
		name, help string
		value      func() float64
	}{
		{"step", "optimizer steps taken", func() float64 { return float64(s.Status().GetStep()) }},
		{"version", "current published policy version", func() float64 { return float64(s.Status().GetVersion()) }},
		{"reward_mean", "mean dense reward of recently trained samples", func() float64 { return s.Status().GetReward().GetMean() }},
		{"correct_rate", "share of recently trained samples with the exact answer", func() float64 { return s.Status().GetCorrectRate() }},
		{"buffer_depth", "admitted rollouts not yet trained on", func() float64 { return float64(s.Status().GetBufferDepth()) }},
		{"rollouts_accepted", "rollouts admitted into the write-ahead log", func() float64 { return float64(s.Status().GetRolloutsAccepted()) }},
		{"rollouts_trained", "rollouts trained on", func() float64 { return float64(s.Status().GetRolloutsTrained()) }},
		{"tokens_per_second", "trained tokens per second, recent steps", func() float64 { return s.Status().GetTokensPerSec() }},
		{"actors", "actors with an open rollout stream", func() float64 { return float64(len(s.Status().GetActors())) }},
		{"loss_total", "total loss of the last step", func() float64 { return s.Status().GetLosses()["loss/total"] }},
	}
	for _, g := range gauges {
		if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tsd_learner_" + g.name, Help: g.help}, g.value)); err != nil {
			return err
		}
	}
	rejected := prometheus.NewDesc("tsd_learner_rollouts_rejected", "rollouts refused at admission, by reason", []string{"reason"}, nil)
	return reg.Register(collectorFunc{desc: rejected, collect: func(ch chan<- prometheus.Metric) {
		for reason, n := range s.ingest.Counts().Rejected {
			ch <- prometheus.MustNewConstMetric(rejected, prometheus.CounterValue, float64(n), reason)
		}
	}})
}

// collectorFunc adapts a function to prometheus.Collector.
type collectorFunc struct {
	desc    *prometheus.Desc
	collect func(chan<- prometheus.Metric)
}

func (c collectorFunc) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }
func (c collectorFunc) Collect(ch chan<- prometheus.Metric) { c.collect(ch) }
