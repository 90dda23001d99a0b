package coordinator

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"tsd/rpc"
	"tsd/rpc/rpctest"
)

// records is a slog handler that keeps every record, for tests that check what was logged.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// at returns the records of one level, each as its message and attributes in one line.
func (r *records) at(level slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level == level {
			line := rec.Message
			rec.Attrs(func(a slog.Attr) bool {
				line += " " + a.String()
				return true
			})
			out = append(out, line)
		}
	}
	return out
}

// TestClientWarnsWhenUnreachable: with nothing listening at the coordinator address, a call
// keeps retrying until its context ends, and says so at WARN within warnAfter, naming the
// address and the cause, once (not at every retry).
func TestClientWarnsWhenUnreachable(t *testing.T) {
	addr := deadAddr(t)
	logs := &records{}
	c, err := Dial([]string{addr}, rpc.Config{}, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), warnAfter+2*time.Second)
	defer cancel()
	_, err = c.RegisterActor(ctx, "a1", "", time.Minute)
	if ctx.Err() == nil {
		t.Fatalf("gave up before its context ended: %v", err)
	}
	warns, retries := logs.at(slog.LevelWarn), logs.at(slog.LevelDebug)
	if len(warns) != 1 || !strings.Contains(warns[0], addr) || !strings.Contains(warns[0], "connection refused") {
		t.Fatalf("warnings %q; want one naming %s and the cause", warns, addr)
	}
	if len(retries) < 3 {
		t.Fatalf("only %d retries logged at debug", len(retries))
	}
	t.Logf("%d retries, warned: %s", len(retries), warns[0])
}

// TestAlarm: the first warning after `after`, then one per `every`, and a fresh outage after a
// success starts the count again.
func TestAlarm(t *testing.T) {
	a := alarm{after: 3 * time.Second, every: 30 * time.Second}
	t0 := time.Unix(1000, 0)
	var warned []time.Duration
	for s := 0; s <= 70; s++ {
		if w, _ := a.failed(t0.Add(time.Duration(s) * time.Second)); w {
			warned = append(warned, time.Duration(s)*time.Second)
		}
	}
	if want := []time.Duration{3 * time.Second, 33 * time.Second, 63 * time.Second}; !equal(warned, want) {
		t.Fatalf("warned at %v, want %v", warned, want)
	}
	if w, outage := a.ok(t0.Add(71 * time.Second)); !w || outage != 71*time.Second {
		t.Fatalf("ok after the outage: %v %v", w, outage)
	}
	if w, _ := a.failed(t0.Add(72 * time.Second)); w {
		t.Fatal("warned at the first failure of a new outage")
	}
}

func equal(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestClientMisconfigFailsFast: against a coordinator serving mutual TLS with a token, a client
// whose TLS or token flags are missing or wrong gets an error naming the flag at once (it cannot
// heal by retrying), not a silent retry loop.
func TestClientMisconfigFailsFast(t *testing.T) {
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	other := rpctest.NewCA(t, dir, "other")
	cert, key := ca.Issue(t, dir, "coordinator")
	good := rpc.Config{Token: "t0k", TLSCert: cert, TLSKey: key, TLSCA: ca.CertFile}
	cfg := serviceConfig(t, "n1")
	cfg.Bootstrap = []Peer{{ID: "n1"}}
	s := startService(t, cfg, good, nil)
	defer s.Close()
	plainCfg := serviceConfig(t, "p1")
	plainCfg.Bootstrap = []Peer{{ID: "p1"}}
	plain := startService(t, plainCfg, rpc.Config{}, nil)
	defer plain.Close()
	if _, err := dialClient(t, good, s.GRPCAddr()).ClusterState(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	with := func(edit func(*rpc.Config)) rpc.Config {
		c := good
		edit(&c)
		return c
	}
	for _, tc := range []struct {
		name, addr string
		cfg        rpc.Config
		flag       string
		code       codes.Code
	}{
		{"plaintext client", s.GRPCAddr(), rpc.Config{Token: "t0k"}, "--tls-ca", codes.Unavailable},
		{"no client certificate", s.GRPCAddr(), with(func(c *rpc.Config) { c.TLSCert, c.TLSKey = "", "" }), "--tls-cert", codes.Unavailable},
		{"other CA", s.GRPCAddr(), with(func(c *rpc.Config) { c.TLSCA = other.CertFile }), "--tls-ca", codes.Unavailable},
		{"no token", s.GRPCAddr(), with(func(c *rpc.Config) { c.Token = "" }), "--token", codes.Unauthenticated},
		{"wrong token", s.GRPCAddr(), with(func(c *rpc.Config) { c.Token = "nope" }), "--token", codes.Unauthenticated},
		{"TLS client, plaintext server", plain.GRPCAddr(), good, "--tls-ca", codes.Unavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := ctxT(t)
			_, err := dialClient(t, tc.cfg, tc.addr).ClusterState(ctx)
			if ctx.Err() != nil || !errors.Is(err, rpc.ErrConfig) || !strings.Contains(err.Error(), tc.flag) ||
				!strings.Contains(err.Error(), tc.addr) || status.Code(err) != tc.code {
				t.Fatalf("%v (%v); want at once rpc.ErrConfig naming %s and %s, code %v", err, status.Code(err), tc.addr, tc.flag, tc.code)
			}
			t.Log(err)
		})
	}
}
