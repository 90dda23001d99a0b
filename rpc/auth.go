package rpc

import (
	"context"
	"crypto/subtle"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// healthPrefix names the methods a probe calls without credentials (Kubernetes gRPC probes and
// grpc_health_probe send none); health reveals nothing but "serving".
const healthPrefix = "/grpc.health.v1.Health/"

// bearer checks the shared token on every incoming RPC. The comparison is constant-time so the
// token cannot be learned byte by byte from response times.
type bearer struct{ want []byte }

func (b bearer) check(ctx context.Context, method string) error {
	if strings.HasPrefix(method, healthPrefix) {
		return nil
	}
	md, _ := metadata.FromIncomingContext(ctx)
	if !b.any(md.Get("authorization")) {
		return status.Error(codes.Unauthenticated, "missing or wrong bearer token")
	}
	return nil
}

// any reports whether one of the authorization values carries the token.
func (b bearer) any(values []string) bool {
	for _, v := range values {
		tok, ok := strings.CutPrefix(v, "Bearer ")
		if ok && subtle.ConstantTimeCompare([]byte(tok), b.want) == 1 {
			return true
		}
	}
	return false
}

// http guards an HTTP handler (/metrics) with the same token.
func (b bearer) http(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.any(r.Header.Values("Authorization")) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tsd"`)
			http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (b bearer) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
	if err := b.check(ctx, info.FullMethod); err != nil {
		return nil, err
	}
	return h(ctx, req)
}

func (b bearer) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, h grpc.StreamHandler) error {
	if err := b.check(ss.Context(), info.FullMethod); err != nil {
		return err
	}
	return h(srv, ss)
}

// tokenCreds sends the shared token with every RPC. It does not demand transport security: the
// token also guards plaintext loopback setups, where it stops accidents rather than attackers.
type tokenCreds string

func (t tokenCreds) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(t)}, nil
}

func (tokenCreds) RequireTransportSecurity() bool { return false }
