package rpc

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	testpb "google.golang.org/grpc/interop/grpc_testing"
	reflectpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"

	"tsd/rpc/rpctest"
)

// echo answers UnaryCall with a payload of the requested size.
type echo struct {
	testpb.UnimplementedTestServiceServer
}

func (echo) UnaryCall(_ context.Context, req *testpb.SimpleRequest) (*testpb.SimpleResponse, error) {
	return &testpb.SimpleResponse{Payload: &testpb.Payload{Body: make([]byte, req.GetResponseSize())}}, nil
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// serve starts a server for cfg on a loopback port and returns its address.
func serve(t *testing.T, cfg Config, reg prometheus.Registerer) string {
	t.Helper()
	s, err := NewServer(cfg, reg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	testpb.RegisterTestServiceServer(s, echo{})
	s.SetServing(true, "grpc.testing.TestService")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(func() { s.Shutdown(time.Second) })
	return lis.Addr().String()
}

// call makes one UnaryCall with the given request and response payload sizes.
func call(t *testing.T, addr string, cfg Config, reqBytes, respBytes int) error {
	t.Helper()
	conn, err := Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = testpb.NewTestServiceClient(conn).UnaryCall(ctx, &testpb.SimpleRequest{
		ResponseSize: int32(respBytes), Payload: &testpb.Payload{Body: make([]byte, reqBytes)},
	})
	return err
}

func TestBearerToken(t *testing.T) {
	addr := serve(t, Config{Token: "s3cret"}, nil)
	for _, tc := range []struct {
		name  string
		token string
		want  codes.Code
	}{
		{"none", "", codes.Unauthenticated},
		{"wrong", "s3cret!", codes.Unauthenticated},
		{"prefix", "s3c", codes.Unauthenticated},
		{"right", "s3cret", codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := status.Code(call(t, addr, Config{Token: tc.token}, 1, 1)); got != tc.want {
				t.Fatalf("token %q: code %v, want %v", tc.token, got, tc.want)
			}
		})
	}
	t.Run("health needs no token", func(t *testing.T) {
		conn, err := Dial(addr, Config{})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health without token: %v, %v", resp, err)
		}
	})
	t.Run("streams are checked", func(t *testing.T) {
		if _, err := listServices(t, addr, Config{}); status.Code(err) != codes.Unauthenticated {
			t.Fatalf("reflection without token: %v", err)
		}
	})
}

// listServices asks the server's reflection service what it serves.
func listServices(t *testing.T, addr string, cfg Config) ([]string, error) {
	t.Helper()
	conn, err := Dial(addr, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := reflectpb.NewServerReflectionClient(conn).ServerReflectionInfo(context.Background())
	if err != nil {
		return nil, err
	}
	// A refused stream can fail Send with io.EOF; its status then comes from Recv.
	_ = stream.Send(&reflectpb.ServerReflectionRequest{MessageRequest: &reflectpb.ServerReflectionRequest_ListServices{}})
	resp, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		names = append(names, s.GetName())
	}
	return names, nil
}

func TestReflection(t *testing.T) {
	addr := serve(t, Config{Token: "t"}, nil)
	names, err := listServices(t, addr, Config{Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"grpc.health.v1.Health", "grpc.testing.TestService"} {
		if !slices.Contains(names, want) {
			t.Errorf("reflection lists %v, missing %s", names, want)
		}
	}
}

func TestMessageSizeLimits(t *testing.T) {
	addr := serve(t, Config{MaxMsgBytes: 1024}, nil)
	for _, tc := range []struct {
		name            string
		reqKiB, respKiB int
		want            codes.Code
	}{
		{"small", 0, 0, codes.OK},
		{"request too large", 2, 0, codes.ResourceExhausted},
		{"response too large", 0, 2, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := call(t, addr, Config{}, tc.reqKiB<<10, tc.respKiB<<10)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code %v (%v), want %v", got, err, tc.want)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	other := rpctest.NewCA(t, dir, "other")
	srvCert, srvKey := ca.Issue(t, dir, "server")
	cliCert, cliKey := ca.Issue(t, dir, "client")
	tlsAddr := serve(t, Config{TLSCert: srvCert, TLSKey: srvKey}, nil)
	mtlsAddr := serve(t, Config{TLSCert: srvCert, TLSKey: srvKey, TLSCA: ca.CertFile}, nil)
	for _, tc := range []struct {
		name string
		addr string
		cfg  Config
		ok   bool
	}{
		{"tls", tlsAddr, Config{TLSCA: ca.CertFile}, true},
		{"plaintext client", tlsAddr, Config{}, false},
		{"unknown CA", tlsAddr, Config{TLSCA: other.CertFile}, false},
		{"mtls", mtlsAddr, Config{TLSCA: ca.CertFile, TLSCert: cliCert, TLSKey: cliKey}, true},
		{"mtls without client cert", mtlsAddr, Config{TLSCA: ca.CertFile}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := call(t, tc.addr, tc.cfg, 1, 1)
			if (err == nil) != tc.ok {
				t.Fatalf("ok=%v, err %v", tc.ok, err)
			}
			if err != nil && status.Code(err) != codes.Unavailable {
				t.Fatalf("handshake failure should be Unavailable, got %v", err)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		want error
	}{
		{"cert without key", Config{TLSCert: "a.pem"}, ErrConfig},
		{"key without cert", Config{TLSKey: "a.pem"}, ErrConfig},
		{"negative size", Config{MaxMsgBytes: -1}, ErrConfig},
		{"missing key pair", Config{TLSCert: filepath.Join(dir, "no.pem"), TLSKey: filepath.Join(dir, "no.key")}, ErrTLS},
		{"CA not PEM", Config{TLSCA: notPEM}, ErrTLS},
		{"missing CA", Config{TLSCA: filepath.Join(dir, "none.pem")}, ErrTLS},
		{"client cert without CA", Config{TLSCert: "c.pem", TLSKey: "k.pem"}, ErrConfig},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errS := NewServer(tc.cfg, nil, quiet())
			_, errC := Dial("127.0.0.1:1", tc.cfg)
			if !errors.Is(errS, tc.want) && !errors.Is(errC, tc.want) {
				t.Fatalf("server %v, client %v; want %v", errS, errC, tc.want)
			}
		})
	}
}

func TestMetrics(t *testing.T) {
	reg := NewRegistry()
	addr := serve(t, Config{Token: "t"}, reg)
	serve(t, Config{}, reg) // a second server on the same registry (tsd local) must work
	for range 3 {
		if err := call(t, addr, Config{Token: "t"}, 1, 1); err != nil {
			t.Fatal(err)
		}
	}
	_ = call(t, addr, Config{}, 1, 1)
	ms, err := ServeMetrics(Config{MetricsAddr: "127.0.0.1:0"}, reg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	code, body := scrape(t, ms.Addr(), "")
	if code != http.StatusOK {
		t.Fatalf("/metrics: HTTP %d", code)
	}
	for _, want := range []string{
		`tsd_grpc_server_handled_total{code="OK",method="/grpc.testing.TestService/UnaryCall"} 3`,
		`tsd_grpc_server_handled_total{code="Unauthenticated",method="/grpc.testing.TestService/UnaryCall"} 1`,
		`tsd_grpc_server_handling_seconds_count{method="/grpc.testing.TestService/UnaryCall"} 4`,
		`go_goroutines`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if _, err := ServeMetrics(Config{MetricsAddr: "127.0.0.1:-1"}, reg, quiet()); err == nil {
		t.Error("bad metrics address accepted")
	}
}

// TestMetricsToken: with a token set, /metrics asks for it like the RPCs do.
func TestMetricsToken(t *testing.T) {
	ms, err := ServeMetrics(Config{MetricsAddr: "127.0.0.1:0", Token: "s3cret"}, NewRegistry(), quiet())
	if err != nil {
		t.Fatal(err)
	}
	defer ms.Close()
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer wrong", http.StatusUnauthorized},
		{"s3cret", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusOK},
	} {
		code, body := scrape(t, ms.Addr(), tc.auth)
		if code != tc.want {
			t.Errorf("Authorization %q: HTTP %d, want %d", tc.auth, code, tc.want)
		}
		if leaked := strings.Contains(body, "go_goroutines"); leaked != (tc.want == http.StatusOK) {
			t.Errorf("Authorization %q: metrics in the body: %v", tc.auth, leaked)
		}
	}
}

// scrape GETs /metrics with an optional Authorization header.
func scrape(t *testing.T, addr, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

func TestShutdownReportsNotServing(t *testing.T) {
	s, err := NewServer(Config{}, nil, quiet())
	if err != nil {
		t.Fatal(err)
	}
	s.SetServing(true, "x")
	s.Shutdown(time.Second)
	resp, err := s.Health.Check(context.Background(), &healthpb.HealthCheckRequest{Service: "x"})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("after Shutdown: %v, %v", resp, err)
	}
}

var _ grpc.ServiceRegistrar = (*Server)(nil)
