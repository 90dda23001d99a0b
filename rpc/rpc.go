// Package rpc holds what the gRPC servers and clients of every tsd role share: health checking and
// reflection (so grpcurl and probes work), message size limits, keepalives, optional TLS and a
// shared bearer token, per-method Prometheus metrics and structured logs of failed calls.
//
// A role builds its server with NewServer, registers its services on it, marks itself serving on
// Health when ready, and dials other roles with Dial using the same Config.
package rpc

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
)

// Keepalive timing shared by servers and clients. The server's enforcement minimum must stay
// below the client's ping interval, or servers would close healthy idle connections.
const (
	clientPingInterval = 30 * time.Second
	pingTimeout        = 10 * time.Second
	serverMinPing      = 10 * time.Second
)

// reconnect is how a client retries a peer it lost. gRPC's default waits up to two minutes
// between attempts; roles restart in seconds (a killed learner, a new raft leader), so cap the
// wait at a few seconds.
var reconnect = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
	MinConnectTimeout: 5 * time.Second,
}

// Server is a grpc.Server with health checking and reflection registered.
type Server struct {
	*grpc.Server
	// Health reports "" and each service NOT_SERVING until the role calls SetServingStatus.
	Health *health.Server
}

// NewServer builds a server from cfg: its size limits, TLS and token, metrics into reg (nil = no
// metrics), failed calls logged to log. Services registered on it later are covered too. extra
// options come last (e.g. the larger flow-control windows the Weights service wants).
func NewServer(cfg Config, reg prometheus.Registerer, log *slog.Logger, extra ...grpc.ServerOption) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	creds, err := serverCreds(cfg)
	if err != nil {
		return nil, err
	}
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if reg != nil {
		m, err := newServerMetrics(reg)
		if err != nil {
			return nil, err
		}
		unary, stream = append(unary, m.unary(log)), append(stream, m.stream(log))
	}
	if cfg.Token != "" {
		b := bearer{want: []byte(cfg.Token)}
		unary, stream = append(unary, b.unary), append(stream, b.stream)
	}
	opts := append([]grpc.ServerOption{
		grpc.Creds(creds),
		grpc.MaxRecvMsgSize(cfg.maxMsgBytes()),
		grpc.MaxSendMsgSize(cfg.maxMsgBytes()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: serverMinPing, PermitWithoutStream: true}),
		// Ping idle clients too, so a stream from a host that vanished without a reset ends in
		// seconds rather than hours.
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: clientPingInterval, Timeout: pingTimeout}),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}, extra...)
	gs := grpc.NewServer(opts...)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)
	return &Server{Server: gs, Health: hs}, nil
}

// SetServing marks the whole server and the named services serving or not serving.
func (s *Server) SetServing(serving bool, services ...string) {
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if serving {
		st = healthpb.HealthCheckResponse_SERVING
	}
	for _, name := range append([]string{""}, services...) {
		s.Health.SetServingStatus(name, st)
	}
}

// Shutdown reports NOT_SERVING, lets running RPCs finish for up to grace, then cuts the rest
// (streams such as WatchVersions never finish by themselves).
func (s *Server) Shutdown(grace time.Duration) {
	s.Health.Shutdown()
	done := make(chan struct{})
	go func() {
		s.GracefulStop()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(grace):
		s.Stop()
		<-done
	}
}

// DialOptions are the client options matching cfg: transport credentials, the token as per-RPC
// credentials, size limits and keepalives. Tests add a bufconn dialer to them.
func DialOptions(cfg Config) ([]grpc.DialOption, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TLSCert != "" && cfg.TLSCA == "" {
		// A client dials TLS only with a CA to verify the server; the certificate alone would be
		// ignored and every connection plaintext: refused by a TLS server, in silence.
		return nil, fmt.Errorf("%w: --tls-cert/--tls-key without --tls-ca: this process would dial in plaintext "+
			"and never present its certificate; add --tls-ca (the CA that signs the servers' certificates)", ErrConfig)
	}
	creds, err := clientCreds(cfg)
	if err != nil {
		return nil, err
	}
	opts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(cfg.maxMsgBytes()), grpc.MaxCallSendMsgSize(cfg.maxMsgBytes())),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: clientPingInterval, Timeout: pingTimeout, PermitWithoutStream: true}),
		grpc.WithConnectParams(reconnect),
	}
	if cfg.Token != "" {
		opts = append(opts, grpc.WithPerRPCCredentials(tokenCreds(cfg.Token)))
	}
	return opts, nil
}

// Dial returns a client connection to addr (host:port) configured like the servers, plus extra
// options. It connects lazily: an unreachable address shows as Unavailable on the first RPC, not
// here.
func Dial(addr string, cfg Config, extra ...grpc.DialOption) (*grpc.ClientConn, error) {
	opts, err := DialOptions(cfg)
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(addr, append(opts, extra...)...)
}
