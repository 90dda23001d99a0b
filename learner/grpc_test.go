package learner

import (
	"context"
	"errors"
	"io"
	"maps"
	"math"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
	"tsd/rpc/rpctest"
)

// rigVersion is the version the rig's learner claims for the admission tests, so that rollouts
// can be both stale (below rigVersion − svcMaxLag) and from the future (above it).
const rigVersion = 5

// TestBadRolloutCodes sends each kind of malformed rollout on one stream, each followed by a good
// one: the bad one gets its result and gRPC code in its ack without ending the stream, is counted
// under its reason in Status.rejected, and never reaches the write-ahead log; the good one after
// it is accepted as if nothing had happened.
func TestBadRolloutCodes(t *testing.T) {
	r := newServiceRig(t, rigOptions{})
	r.svc.Ingest().SetVersion(rigVersion)
	ctx := ctxFor(t, time.Minute)
	s, reply := stream(ctx, t, r.client(t, rpc.Config{}), "a1")
	if reply.GetCredits() != svcCredits || reply.GetLastAckedSeq() != 0 || reply.GetLearnerVersion() != rigVersion {
		t.Fatalf("hello reply %v", reply)
	}
	sample := func(r *tsdv1.Rollout) *tsdv1.Sample { return r.Samples[0] }
	nan, inf := float32(math.NaN()), float32(math.Inf(1))
	cases := []struct {
		name   string
		edit   func(*tsdv1.Rollout)
		result tsdv1.RolloutAck_Result
		code   codes.Code
		reason string // the Status.rejected key
	}{
		{"log-probs shorter than the completion", func(r *tsdv1.Rollout) { sample(r).Logprobs = []float32{-1} }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"values longer than the completion", func(r *tsdv1.Rollout) { sample(r).Values = []float32{0, 0, 0, 0} }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"NaN log-prob", func(r *tsdv1.Rollout) { sample(r).Logprobs[1] = nan }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"positive log-prob", func(r *tsdv1.Rollout) { sample(r).Logprobs[0] = 0.5 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"infinite value", func(r *tsdv1.Rollout) { sample(r).Values[2] = inf }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"NaN reward", func(r *tsdv1.Rollout) { sample(r).Reward = nan }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"reward outside [-1, 1]", func(r *tsdv1.Rollout) { sample(r).Reward = 1.5 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"token outside the vocabulary", func(r *tsdv1.Rollout) { sample(r).CompletionIds[0] = 1 << 30 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"negative prompt token", func(r *tsdv1.Rollout) { r.PromptIds[0] = -1 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"empty completion", func(r *tsdv1.Rollout) {
			s := sample(r)
			s.CompletionIds, s.Logprobs, s.Values = nil, nil, nil
		}, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"no samples", func(r *tsdv1.Rollout) { r.Samples = nil }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"another algorithm's rollout", func(r *tsdv1.Rollout) { r.Algo = tsdv1.Algo_ALGO_GROUP }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"seq 0", func(r *tsdv1.Rollout) { r.Seq = 0 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "malformed"},
		{"version from the future", func(r *tsdv1.Rollout) { r.PolicyVersion = rigVersion + 1 }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "version from the future"},
		{"stale version", func(r *tsdv1.Rollout) { r.PolicyVersion = rigVersion - svcMaxLag - 1 }, tsdv1.RolloutAck_STALE, codes.FailedPrecondition, "stale"},
		{"oversized completion", func(r *tsdv1.Rollout) {
			s := sample(r)
			s.CompletionIds, s.Logprobs, s.Values = make([]int32, svcMaxTokens+1), make([]float32, svcMaxTokens+1), nil
		}, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "oversized"},
		{"another actor's rollout", func(r *tsdv1.Rollout) { r.ActorId = "a2" }, tsdv1.RolloutAck_INVALID, codes.InvalidArgument, "wrong actor"},
	}
	want := map[string]uint64{}
	seq := uint64(1)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			bad := r.goodRollout(seq)
			c.edit(bad)
			if bad.Seq != 0 {
				bad.Seq = seq // a refused seq may be skipped; the good rollout below takes the next
			}
			seq++
			a := exchange(t, s, bad)
			if a.GetResult() != c.result || codes.Code(a.GetCode()) != c.code || a.GetReason() == "" {
				t.Errorf("ack %v, want result %v code %v with a reason", a, c.result, c.code)
			}
			want[c.reason]++
			good := exchange(t, s, r.goodRollout(seq))
			seq++
			if good.GetResult() != tsdv1.RolloutAck_ACCEPTED || good.GetCode() != 0 {
				t.Errorf("the good rollout after it: %v", good)
			}
		})
	}
	dup := exchange(t, s, r.goodRollout(seq-1)) // a retry of the last good rollout
	if dup.GetResult() != tsdv1.RolloutAck_DUPLICATE || dup.GetCode() != 0 {
		t.Errorf("retry of an acked rollout: %v, want DUPLICATE", dup)
	}
	st := r.svc.Status()
	if !maps.Equal(st.GetRejected(), want) {
		t.Errorf("Status.rejected %v, want %v", st.GetRejected(), want)
	}
	if st.GetRolloutsAccepted() != uint64(len(cases)) {
		t.Errorf("Status.rollouts_accepted %d, want %d", st.GetRolloutsAccepted(), len(cases))
	}
	// Only the good rollouts are in the write-ahead log.
	recs, err := r.svc.wal.Read(r.svc.wal.First(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(cases) {
		t.Fatalf("the log holds %d records, want the %d good ones", len(recs), len(cases))
	}
	for _, rec := range recs {
		if err := r.svc.trainer.CheckRollout(rec.Rollout); err != nil || rec.Rollout.GetSeq()%2 != 0 {
			t.Errorf("log record seq %d: %v", rec.Rollout.GetSeq(), err)
		}
	}
}

// TestBadStreamCodes checks the errors that end a stream (its status, not an ack), and that a
// good stream still works after them.
func TestBadStreamCodes(t *testing.T) {
	// The server takes messages up to 64 KiB; the client would send up to the default 64 MiB, so
	// the server's limit is what refuses the big message.
	const serverMax = 64 << 10
	r := newServiceRig(t, rigOptions{server: rpc.Config{MaxMsgBytes: serverMax}})
	c := r.client(t, rpc.Config{})
	ctx := ctxFor(t, time.Minute)
	huge := r.goodRollout(1)
	huge.PromptIds = make([]int32, serverMax+1) // packed varint zeros: one byte each
	cases := []struct {
		name   string
		send   []*tsdv1.RolloutUpload
		code   codes.Code
		reason string // counted in Status.rejected, "" for none
	}{
		{"rollout before Hello", []*tsdv1.RolloutUpload{upload(r.goodRollout(1))}, codes.InvalidArgument, ""},
		{"Hello without an actor id", []*tsdv1.RolloutUpload{hello("")}, codes.InvalidArgument, ""},
		{"empty message", []*tsdv1.RolloutUpload{{}}, codes.InvalidArgument, ""},
		{"second Hello", []*tsdv1.RolloutUpload{hello("a1"), hello("a1")}, codes.InvalidArgument, ""},
		{"actor without a lease", []*tsdv1.RolloutUpload{hello("ghost")}, codes.FailedPrecondition, "unknown actor"},
		{"message over the size limit", []*tsdv1.RolloutUpload{hello("a1"), upload(huge)}, codes.ResourceExhausted, ""},
	}
	want := map[string]uint64{}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := c.StreamRollouts(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range tc.send {
				if err := s.Send(m); err != nil && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
			}
			if err := s.CloseSend(); err != nil {
				t.Fatal(err)
			}
			var got error
			for got == nil {
				_, got = s.Recv() // the Hello reply, if any, then the stream's status
			}
			if status.Code(got) != tc.code {
				t.Errorf("stream ended with %v, want %v", got, tc.code)
			}
			if tc.reason != "" {
				want[tc.reason]++
			}
		})
	}
	if st := r.svc.Status(); !maps.Equal(st.GetRejected(), want) {
		t.Errorf("Status.rejected %v, want %v", st.GetRejected(), want)
	}
	s, _ := stream(ctx, t, c, "a1")
	if a := exchange(t, s, r.goodRollout(1)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
		t.Errorf("a good stream after the bad ones: %v", a)
	}
}

// TestLearnerSecurity: a learner with a token refuses every call without it (or with a wrong
// one) as Unauthenticated and serves a client that has it; with mutual TLS as well, a plaintext
// client or one without a certificate cannot connect (Unavailable).
func TestLearnerSecurity(t *testing.T) {
	const token = "s3cret"
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	srvCert, srvKey := ca.Issue(t, dir, "learner")
	cliCert, cliKey := ca.Issue(t, dir, "actor")
	tlsClient := rpc.Config{TLSCA: ca.CertFile, TLSCert: cliCert, TLSKey: cliKey}
	withToken := func(c rpc.Config, tok string) rpc.Config { c.Token = tok; return c }
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rigs := []struct {
		name   string
		server rpc.Config
		lis    net.Listener
		client rpc.Config // a client that passes the transport
		denied []rpc.Config
	}{
		{"token", rpc.Config{Token: token}, nil, rpc.Config{}, nil},
		{"token and mutual TLS", rpc.Config{Token: token, TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca.CertFile}, lis, tlsClient,
			[]rpc.Config{{Token: token}, {Token: token, TLSCA: ca.CertFile}}},
	}
	for _, rig := range rigs {
		t.Run(rig.name, func(t *testing.T) {
			r := newServiceRig(t, rigOptions{server: rig.server, listener: rig.lis})
			ctx := ctxFor(t, time.Minute)
			for _, tok := range []string{"", "wrong"} {
				expectCode(ctx, t, r.client(t, withToken(rig.client, tok)), codes.Unauthenticated)
			}
			for _, cfg := range rig.denied {
				expectCode(ctx, t, r.client(t, cfg), codes.Unavailable)
			}
			c := r.client(t, withToken(rig.client, token))
			if _, err := c.Status(ctx, &tsdv1.StatusRequest{}); err != nil {
				t.Fatalf("Status with the token: %v", err)
			}
			s, _ := stream(ctx, t, c, "a1")
			if a := exchange(t, s, r.goodRollout(1)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
				t.Errorf("rollout with the token: %v", a)
			}
		})
	}
}

// expectCode requires Status and StreamRollouts through c to fail with code.
func expectCode(ctx context.Context, t *testing.T, c tsdv1.LearnerClient, code codes.Code) {
	t.Helper()
	if _, err := c.Status(ctx, &tsdv1.StatusRequest{}); status.Code(err) != code {
		t.Errorf("Status: %v, want %v", err, code)
	}
	s, err := c.StreamRollouts(ctx)
	if err == nil {
		_, err = s.Recv()
	}
	if status.Code(err) != code {
		t.Errorf("StreamRollouts: %v, want %v", err, code)
	}
}

// TestHelloResumesAfterDurable: a reconnecting actor learns the last seq the learner holds, and
// rollouts it sends again are acknowledged as duplicates, not written twice.
func TestHelloResumesAfterDurable(t *testing.T) {
	r := newServiceRig(t, rigOptions{})
	c := r.client(t, rpc.Config{})
	ctx := ctxFor(t, time.Minute)
	s, _ := stream(ctx, t, c, "a1")
	for seq := uint64(1); seq <= 3; seq++ {
		exchange(t, s, r.goodRollout(seq))
	}
	if err := s.CloseSend(); err != nil {
		t.Fatal(err)
	}
	s2, reply := stream(ctx, t, c, "a1")
	if reply.GetLastAckedSeq() != 3 {
		t.Fatalf("hello after 3 acked: last acked seq %d", reply.GetLastAckedSeq())
	}
	if a := exchange(t, s2, r.goodRollout(2)); a.GetResult() != tsdv1.RolloutAck_DUPLICATE {
		t.Errorf("resent seq 2: %v", a)
	}
	if a := exchange(t, s2, r.goodRollout(4)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
		t.Errorf("seq 4: %v", a)
	}
	if n := r.svc.wal.Next() - r.svc.wal.First(); n != 4 {
		t.Errorf("log holds %d records, want 4", n)
	}
}

// TestStatusActorsOverlappingStreams: an actor's new stream can open before its old one has
// ended on the server (a reconnect racing the old stream's teardown, or a dead host's connection
// the server has not noticed). The old stream ending must not hide the live one from Status.
func TestStatusActorsOverlappingStreams(t *testing.T) {
	r := newServiceRig(t, rigOptions{})
	c := r.client(t, rpc.Config{})
	ctx := ctxFor(t, time.Minute)
	old, _ := stream(ctx, t, c, "a1")
	live, _ := stream(ctx, t, c, "a1")
	end := func(s tsdv1.Learner_StreamRolloutsClient) {
		t.Helper()
		if err := s.CloseSend(); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Recv(); !errors.Is(err, io.EOF) { // the handler has returned
			t.Fatalf("stream end: %v", err)
		}
	}
	connected := func() int { return len(r.svc.Status().GetActors()) }
	end(old)
	if n := connected(); n != 1 {
		t.Fatalf("after the old stream ended: %d actors connected, want 1 (the live stream)", n)
	}
	if a := exchange(t, live, r.goodRollout(1)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
		t.Fatalf("rollout on the live stream: %v", a)
	}
	if a := r.svc.Status().GetActors(); len(a) != 1 || a[0].GetRollouts() != 1 || a[0].GetLastSeq() != 1 {
		t.Fatalf("status of the live stream: %v", a)
	}
	end(live)
	if n := connected(); n != 0 {
		t.Fatalf("after both streams ended: %d actors connected", n)
	}
}

// TestMaxMsgBytesHonoured: the learner's server carries the Weights service's options, which must
// not replace the operator's message limit. A 7.5 MiB rollout passes the default 64 MiB limit (it
// reaches the learner, which answers it in its ack: far more prompt tokens than the model has
// positions), and a server configured with 5 MiB refuses it with ResourceExhausted.
func TestMaxMsgBytesHonoured(t *testing.T) {
	big := func(r *serviceRig) *tsdv1.Rollout {
		x := r.goodRollout(1)
		x.PromptIds = make([]int32, 6<<20/4) // 6 MiB as int32s
		for i := range x.PromptIds {
			x.PromptIds[i] = 1 << 28 // five bytes as a varint: the message is 7.5 MiB
		}
		return x
	}
	t.Run("default limit", func(t *testing.T) {
		r := newServiceRig(t, rigOptions{})
		ctx := ctxFor(t, time.Minute)
		s, _ := stream(ctx, t, r.client(t, rpc.Config{}), "a1")
		if a := exchange(t, s, big(r)); a.GetResult() != tsdv1.RolloutAck_INVALID || codes.Code(a.GetCode()) != codes.InvalidArgument {
			t.Fatalf("ack %v, want INVALID from the learner itself", a)
		}
		if a := exchange(t, s, r.goodRollout(2)); a.GetResult() != tsdv1.RolloutAck_ACCEPTED {
			t.Fatalf("the rollout after it: %v", a)
		}
	})
	t.Run("5 MiB limit", func(t *testing.T) {
		r := newServiceRig(t, rigOptions{server: rpc.Config{MaxMsgBytes: 5 << 20}})
		ctx := ctxFor(t, time.Minute)
		s, _ := stream(ctx, t, r.client(t, rpc.Config{}), "a1")
		if err := s.Send(upload(big(r))); err != nil && !errors.Is(err, io.EOF) {
			t.Fatal(err)
		}
		a, err := s.Recv()
		if status.Code(err) != codes.ResourceExhausted {
			t.Fatalf("a 7.5 MiB rollout under a 5 MiB limit: %v %v, want ResourceExhausted", a, err)
		}
	})
}
