package coordinator

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// nodeMetrics are the coordinator's own series; gRPC request counts come from package rpc.
type nodeMetrics struct {
	applySeconds  *prometheus.HistogramVec
	rejected      *prometheus.CounterVec
	leaderChanges prometheus.Counter
	forwarded     *prometheus.CounterVec
}

func newNodeMetrics() *nodeMetrics {
	return &nodeMetrics{
		applySeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tsd_coordinator_apply_seconds",
			Help:    "Time for the leader to commit and apply a command, by command.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14),
		}, []string{"op"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsd_coordinator_rejected_total",
			Help: "Commands refused by validation or by the state machine's rules, by command and reason.",
		}, []string{"op", "reason"}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tsd_coordinator_leader_changes_total",
			Help: "Leader changes this node observed.",
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tsd_coordinator_forwarded_total",
			Help: "Writes this follower forwarded to the leader, by method.",
		}, []string{"method"}),
	}
}

func (m *nodeMetrics) reject(o op, err error) {
	m.rejected.WithLabelValues(string(o), reasonOf(err)).Inc()
}

// RegisterMetrics adds the node's series to reg: commit latency, refusals by reason, leader
// changes, forwarded writes, and gauges read from the local state.
func (n *Node) RegisterMetrics(reg prometheus.Registerer) error {
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	cs := []prometheus.Collector{
		n.metrics.applySeconds, n.metrics.rejected, n.metrics.leaderChanges, n.metrics.forwarded,
		gauge("tsd_coordinator_is_leader", "1 while this node leads.", func() float64 { return b2f(n.IsLeader()) }),
		gauge("tsd_coordinator_applied_index", "Last raft index applied here.", func() float64 { return float64(n.raft.AppliedIndex()) }),
		gauge("tsd_coordinator_latest_version", "Newest policy version this node has applied.", func() float64 {
			var v float64
			n.fsm.view(func(s *State) { v = float64(len(s.Versions)) })
			return v
		}),
		gauge("tsd_coordinator_learner_epoch", "Fencing epoch of the current learner lease.", func() float64 {
			var e float64
			n.fsm.view(func(s *State) {
				if s.Learner != nil {
					e = float64(s.Learner.Epoch)
				}
			})
			return e
		}),
		gauge("tsd_coordinator_live_actors", "Actors with a live lease at this node's clock.", func() float64 {
			var c float64
			now := n.clock().UnixMilli()
			n.fsm.view(func(s *State) { c = float64(len(s.liveActors(now))) })
			return c
		}),
	}
	var errs []error
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("coordinator: register metrics: %w", err)
	}
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
