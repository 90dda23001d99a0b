package rpc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NewRegistry returns a Prometheus registry with the Go runtime and process collectors, the
// starting point of every role's /metrics. Roles pass it around; there is no global registry.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// serverMetrics counts every RPC a server handles by method and status code and times it.
type serverMetrics struct {
	handled *prometheus.CounterVec
	seconds *prometheus.HistogramVec
}

func newServerMetrics(reg prometheus.Registerer) (*serverMetrics, error) {
	handled := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tsd_grpc_server_handled_total",
		Help: "RPCs completed by the server, by full method and status code.",
	}, []string{"method", "code"})
	seconds := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "tsd_grpc_server_handling_seconds",
		Help:    "Time from an RPC's start to its status (streams: the whole stream).",
		Buckets: prometheus.ExponentialBuckets(0.0005, 4, 10),
	}, []string{"method"})
	var err error
	// Several servers of one process (tsd local) share a registry: reuse what is registered.
	if handled, err = registerOnce(reg, handled); err != nil {
		return nil, err
	}
	if seconds, err = registerOnce(reg, seconds); err != nil {
		return nil, err
	}
	return &serverMetrics{handled: handled, seconds: seconds}, nil
}

func registerOnce[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	if err != nil {
		return c, fmt.Errorf("rpc: register metrics: %w", err)
	}
	return c, nil
}

func (m *serverMetrics) observe(method string, start time.Time, err error) {
	m.handled.WithLabelValues(method, status.Code(err).String()).Inc()
	m.seconds.WithLabelValues(method).Observe(time.Since(start).Seconds())
}

// logged reports failed RPCs: server faults at Warn, caller faults at Debug (they are counted).
func logged(log *slog.Logger, method string, start time.Time, err error) {
	if err == nil {
		return
	}
	level := slog.LevelDebug
	switch status.Code(err) {
	case codes.Internal, codes.Unknown, codes.DataLoss:
		level = slog.LevelWarn
	}
	log.Log(context.Background(), level, "rpc failed", "method", method, "code", status.Code(err).String(),
		"err", status.Convert(err).Message(), "ms", time.Since(start).Milliseconds())
}

func (m *serverMetrics) unary(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := h(ctx, req)
		m.observe(info.FullMethod, start, err)
		logged(log, info.FullMethod, start, err)
		return resp, err
	}
}

func (m *serverMetrics) stream(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
		start := time.Now()
		err := h(srv, ss)
		m.observe(info.FullMethod, start, err)
		logged(log, info.FullMethod, start, err)
		return err
	}
}

// MetricsServer serves one registry's metrics at /metrics over plain HTTP.
type MetricsServer struct {
	srv *http.Server
	lis net.Listener
}

// ServeMetrics listens on cfg.MetricsAddr now (so a bad address fails at start-up) and serves g
// in the background until Close. With cfg.Token set, /metrics asks for the same bearer token as
// the RPCs (Prometheus: authorization.credentials): the metrics name actors, addresses and the
// run, and a token that guards the RPCs but not this port would guard little.
func ServeMetrics(cfg Config, g prometheus.Gatherer, log *slog.Logger) (*MetricsServer, error) {
	lis, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("rpc: metrics listen: %w", err)
	}
	var h http.Handler = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	if cfg.Token != "" {
		h = bearer{want: []byte(cfg.Token)}.http(h)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", h)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server stopped", "err", err)
		}
	}()
	return &MetricsServer{srv: srv, lis: lis}, nil
}

// Addr is the bound address (useful after listening on port 0).
func (m *MetricsServer) Addr() string { return m.lis.Addr().String() }

// Close stops serving.
func (m *MetricsServer) Close() error { return m.srv.Close() }
