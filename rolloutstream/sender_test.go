package rolloutstream

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	tsdv1 "tsd/proto/tsd/v1"
)

// scriptedLearner plays one scripted session per stream: how many credits its Hello reply
// grants, how many rollouts it reads, and whether it acks them or drops the stream after them
// (a crash). Sessions past the script ack everything.
type scriptedLearner struct {
	tsdv1.UnimplementedLearnerServer
	script []session

	mu       sync.Mutex
	sessions int
	durable  uint64 // highest seq acked
}

type session struct {
	credits uint32
	read    int // rollouts read before the stream is dropped without acks
}

func (l *scriptedLearner) StreamRollouts(stream grpc.BidiStreamingServer[tsdv1.RolloutUpload, tsdv1.RolloutAck]) error {
	if _, err := stream.Recv(); err != nil { // Hello
		return err
	}
	l.mu.Lock()
	n, durable := l.sessions, l.durable
	l.sessions++
	l.mu.Unlock()
	if n < len(l.script) {
		s := l.script[n]
		if err := stream.Send(&tsdv1.RolloutAck{LastAckedSeq: durable, Credits: s.credits}); err != nil {
			return err
		}
		for range s.read {
			if _, err := stream.Recv(); err != nil {
				return err
			}
		}
		return status.Error(codes.Unavailable, "scripted crash")
	}
	if err := stream.Send(&tsdv1.RolloutAck{LastAckedSeq: durable, Credits: 4}); err != nil {
		return err
	}
	for {
		m, err := stream.Recv()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		seq := m.GetRollout().GetSeq()
		l.mu.Lock()
		l.durable = max(l.durable, seq)
		l.mu.Unlock()
		if err := stream.Send(&tsdv1.RolloutAck{Seq: seq, Credits: 1, Result: tsdv1.RolloutAck_ACCEPTED}); err != nil {
			return err
		}
	}
}

// serveScripted serves l over bufconn and returns a dial function for a Sender.
func serveScripted(t *testing.T, l *scriptedLearner) func(context.Context) (tsdv1.LearnerClient, error) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	srv := grpc.NewServer()
	tsdv1.RegisterLearnerServer(srv, l)
	go srv.Serve(lis) //nolint:errcheck // ends with Stop
	t.Cleanup(srv.Stop)
	conn, err := grpc.NewClient("passthrough:///bufnet", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	client := tsdv1.NewLearnerClient(conn)
	return func(context.Context) (tsdv1.LearnerClient, error) { return client, nil }
}

// TestSenderResendSurvivesStreamLoss: the learner crashes with rollouts in flight, comes back
// granting fewer credits than the sender must resend, and crashes again mid-resend. The sender
// must notice the lost stream while it waits for credits, reconnect, and deliver everything.
func TestSenderResendSurvivesStreamLoss(t *testing.T) {
	learner := &scriptedLearner{script: []session{{credits: 4, read: 4}, {credits: 1, read: 1}}}
	s := NewSender("a1", serveScripted(t, learner), 8, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	const n = 4
	for range n {
		if err := s.Send(ctx, &tsdv1.Rollout{PromptId: "p"}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, _, pending, _ := s.Counts()
		if c.Acked == n && pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %+v, %d pending (stuck resending?)", c, pending)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if c, _, _, _ := s.Counts(); c.Reconnects < 2 || c.LastSeq != n {
		t.Errorf("counts %+v: want ≥ 2 reconnects, last seq %d", c, n)
	}
}
