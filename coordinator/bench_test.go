package coordinator

import (
	"context"
	"slices"
	"testing"
	"time"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// BenchmarkPublishCommit measures how long a version publish takes to commit on a 3-node cluster
// over real loopback TCP with boltdb (every log append fsynced on each node), and reports the p50
// and p99 latency in milliseconds. Run with a fixed count for stable percentiles:
//
//	go test -run '^$' -bench PublishCommit -benchtime 2000x ./coordinator/
func BenchmarkPublishCommit(b *testing.B) {
	cluster := benchCluster(b)
	ctx := context.Background()
	leader := waitServiceLeader(b, cluster)
	var follower *Service
	for _, s := range cluster {
		if s != leader {
			follower = s
			break
		}
	}
	rc := rpc.Config{}
	run := testRun("bench")
	lc, err := Dial([]string{leader.GRPCAddr()}, rc, testLog())
	if err != nil {
		b.Fatal(err)
	}
	defer lc.Close()
	acq, err := lc.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: "bench", Addr: "l.test:7201", Run: runToProto(&run), TtlMs: time.Hour.Milliseconds()})
	if err != nil {
		b.Fatal(err)
	}
	epoch := acq.GetLease().GetEpoch()
	next := uint64(1)
	publish := func(f func(v Version) error) func() error {
		return func() error {
			err := f(testVersion(next, next, epoch))
			next++
			return err
		}
	}
	fc, err := Dial([]string{follower.GRPCAddr()}, rc, testLog())
	if err != nil {
		b.Fatal(err)
	}
	defer fc.Close()
	grpcVia := func(c *Client) func(Version) error {
		return func(v Version) error { _, err := c.PublishVersion(ctx, protoVersion(v)); return err }
	}
	for _, bc := range []struct {
		name string
		op   func() error
	}{
		{"node", publish(func(v Version) error { _, err := leader.Node().PublishVersion(ctx, v); return err })},
		{"grpc-leader", publish(grpcVia(lc))},
		{"grpc-follower", publish(grpcVia(fc))},
	} {
		b.Run(bc.name, func(b *testing.B) { measureLatency(b, bc.op) })
	}
}

// measureLatency runs op b.N times one after another and reports latency percentiles.
func measureLatency(b *testing.B, op func() error) {
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := op(); err != nil {
			b.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	b.StopTimer()
	slices.Sort(lat)
	pct := func(p float64) float64 {
		i := min(len(lat)-1, int(float64(len(lat))*p))
		return float64(lat[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "max-ms")
}

// benchCluster starts three durable nodes on loopback: one bootstrapped, two joined.
func benchCluster(b *testing.B) []*Service {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out []*Service
	for _, id := range []string{"n1", "n2", "n3"} {
		cfg := DefaultConfig()
		cfg.NodeID, cfg.RaftAddr, cfg.GRPCAddr, cfg.DataDir = id, "127.0.0.1:0", "127.0.0.1:0", b.TempDir()
		if id == "n1" {
			cfg.Bootstrap = []Peer{{ID: id}}
		} else {
			cfg.Join = []string{out[0].GRPCAddr()}
		}
		s, err := Start(ctx, cfg, rpc.Config{}, nil, testLog())
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, s)
	}
	b.Cleanup(func() {
		for _, s := range out {
			_ = s.Close()
		}
	})
	return out
}

func waitServiceLeader(b *testing.B, services []*Service) *Service {
	b.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range services {
			if s.Node().IsLeader() {
				return s
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.Fatal("no leader")
	return nil
}
