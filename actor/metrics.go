package actor

import "github.com/prometheus/client_golang/prometheus"

// RegisterMetrics exports the actor's state to Prometheus (tsd_actor_*), from its Status.
func (a *Actor) RegisterMetrics(reg prometheus.Registerer) error {
	gauges := []struct {
		name, help string
		value      func() float64
	}{
		{"policy_version", "policy version in use", func() float64 { return float64(a.Status().GetPolicyVersion()) }},
		{"rollouts_sent", "rollouts sent to the learner", func() float64 { return float64(a.Status().GetRolloutsSent()) }},
		{"rollouts_acked", "rollouts the learner made durable", func() float64 { return float64(a.Status().GetRolloutsAcked()) }},
		{"rollouts_rejected", "rollouts the learner refused", func() float64 { return float64(a.Status().GetRolloutsRejected()) }},
		{"pending", "rollouts produced but not yet acked", func() float64 { return float64(a.Status().GetPending()) }},
		{"credits", "rollouts the learner currently allows in flight", func() float64 { return float64(a.Status().GetCredits()) }},
		{"tokens_per_second", "generated tokens per second since start", func() float64 { return a.Status().GetTokensPerSec() }},
		{"reward_mean", "mean dense reward of produced samples", func() float64 { return a.Status().GetRewardMean() }},
	}
	for _, g := range gauges {
		if err := reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "tsd_actor_" + g.name, Help: g.help}, g.value)); err != nil {
			return err
		}
	}
	return nil
}
