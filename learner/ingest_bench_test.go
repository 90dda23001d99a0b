package learner

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rolloutstream"
	"tsd/rpc"
)

// benchCompletion is the completion length of a small benchmark rollout (as rolloutlog's
// benchmark: 100 tokens with log-probs, plus values here).
const benchCompletion = 100

// BenchmarkIngest measures the learner's intake end to end on TCP loopback: K actors, each an
// rolloutstream.Sender on its own connection (credits, acks, reconnect logic: the real client), stream
// small rollouts into a real Service through the gRPC adapter, which admits each (the trainer's
// checks), writes it to the write-ahead log with fsync (group commit) and acks it once durable.
// One op is one rollout acked; the figures to read are rollouts/s and rollouts/fsync (how many
// share one group commit: a stream keeps at most its credits in flight, so one actor's rate is
// about credits/2 per fsync latency).
func BenchmarkIngest(b *testing.B) {
	cases := []struct {
		actors  int
		credits uint32
	}{{1, 32}, {1, 128}, {4, 32}, {16, 32}}
	for _, c := range cases {
		b.Run(fmt.Sprintf("actors=%d/credits=%d", c.actors, c.credits), func(b *testing.B) { benchIngest(b, c.actors, c.credits) })
	}
}

func benchIngest(b *testing.B, actors int, credits uint32) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := newServiceRig(b, rigOptions{listener: lis, edit: func(c *ServiceConfig) {
		c.SyncLog, c.Credits, c.MaxCompletionTokens = true, credits, benchCompletion
		c.MaxBuffer = 0 // nothing trains here: an unbounded buffer, or credits would stop at it
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	template := benchRollout(r.svc.Ingest().Version())
	b.SetBytes(int64(proto.Size(template)))
	senders := make([]*rolloutstream.Sender, actors)
	for i := range senders {
		id := fmt.Sprintf("bench-%02d", i)
		if _, err := r.coord.RegisterActor(ctx, id, "", time.Hour); err != nil {
			b.Fatal(err)
		}
		conn, err := rpc.Dial(lis.Addr().String(), rpc.Config{})
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		client := tsdv1.NewLearnerClient(conn)
		senders[i] = rolloutstream.NewSender(id, func(context.Context) (tsdv1.LearnerClient, error) { return client, nil }, 2*int(credits), discardLog())
		go senders[i].Run(ctx) //nolint:errcheck // ends with ctx
	}
	share := func(i int) int { return b.N/actors + boolInt(i < b.N%actors) }
	// Each rollout is its own message: the sender numbers it and keeps it until acked.
	msgs := make([][]*tsdv1.Rollout, actors)
	for i := range msgs {
		for range share(i) {
			msgs[i] = append(msgs[i], proto.Clone(template).(*tsdv1.Rollout))
		}
	}
	b.ResetTimer()
	for i, s := range senders {
		go func() {
			for _, m := range msgs[i] {
				if err := s.Send(ctx, m); err != nil {
					return
				}
			}
		}()
	}
	for i, s := range senders {
		for {
			c, _, _, _ := s.Counts()
			if c.Acked+c.Rejected >= uint64(share(i)) {
				if c.Rejected > 0 || c.Duplicates > 0 || c.Reconnects > 0 {
					b.Fatalf("sender %d: %+v", i, c)
				}
				break
			}
			time.Sleep(200 * time.Microsecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rollouts/s")
	st := r.svc.wal.Stats()
	b.ReportMetric(float64(st.Appended)/float64(max(st.Commits, 1)), "rollouts/fsync")
	if got := r.svc.Status().GetRolloutsAccepted(); got != uint64(b.N) {
		b.Fatalf("learner accepted %d of %d", got, b.N)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// benchRollout is a small MCTS rollout: a 16-token prompt and a 100-token completion with
// log-probs and values.
func benchRollout(version uint64) *tsdv1.Rollout {
	s := &tsdv1.Sample{Reward: 0.25, Finished: true, StepEnds: []int32{40, 80, benchCompletion}}
	for i := range benchCompletion {
		s.CompletionIds = append(s.CompletionIds, int32(1+i%200))
		s.Logprobs = append(s.Logprobs, -0.01*float32(i%50))
		s.Values = append(s.Values, 0.001*float32(i))
	}
	prompt := make([]int32, 16)
	for i := range prompt {
		prompt[i] = int32(10 + i)
	}
	return &tsdv1.Rollout{PolicyVersion: version, PromptId: "bench", PromptIds: prompt, Algo: tsdv1.Algo_ALGO_MCTS,
		Samples: []*tsdv1.Sample{s}}
}
