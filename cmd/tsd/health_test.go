package main

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"tsd/rpc"
	"tsd/rpc/rpctest"
)

// healthServer serves an rpc.Server on a loopback port, marked serving or not, and returns its
// address.
func healthServer(t *testing.T, rc rpc.Config, serving bool) string {
	t.Helper()
	s, err := rpc.NewServer(rc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	s.SetServing(serving, "tsd.v1.Learner")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(lis) //nolint:errcheck // Serve returns when the test stops the server
	t.Cleanup(s.Stop)
	return lis.Addr().String()
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

func TestHealth(t *testing.T) {
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "server")
	tlsServer := rpc.Config{TLSCert: cert, TLSKey: key}
	serving := healthServer(t, rpc.Config{}, true)
	tests := []struct {
		name    string
		args    []string
		wantOut string
		wantErr string
		is      error
	}{
		{name: "serving", args: []string{"--addr", serving}, wantOut: "SERVING\n"},
		{name: "serving service", args: []string{"--addr", serving, "--service", "tsd.v1.Learner"}, wantOut: "SERVING\n"},
		{name: "token not needed", args: []string{"--addr", healthServer(t, rpc.Config{Token: "secret"}, true)}, wantOut: "SERVING\n"},
		{name: "not serving", args: []string{"--addr", healthServer(t, rpc.Config{}, false)}, wantErr: "NOT_SERVING", is: errNotServing},
		{name: "unknown service", args: []string{"--addr", serving, "--service", "tsd.v1.Nope"}, wantErr: "NotFound"},
		{name: "nothing listening", args: []string{"--addr", closedAddr(t), "--timeout", "2s"}, wantErr: "Unavailable"},
		{name: "tls", args: []string{"--addr", healthServer(t, tlsServer, true), "--tls-ca", ca.CertFile}, wantOut: "SERVING\n"},
		{name: "tls expected", args: []string{"--addr", healthServer(t, tlsServer, true), "--timeout", "2s"}, wantErr: "Unavailable"},
		{name: "cert without key", args: []string{"--addr", serving, "--tls-cert", cert}, is: rpc.ErrConfig},
		{name: "extra argument", args: []string{"--addr", serving, "now"}, wantErr: "unknown command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runTSD(t, "", append([]string{"health"}, tt.args...)...)
			if tt.wantErr == "" && tt.is == nil {
				if err != nil || out != tt.wantOut {
					t.Fatalf("tsd health %v = %q, %v; want %q", tt.args, out, err, tt.wantOut)
				}
				return
			}
			if err == nil {
				t.Fatalf("tsd health %v succeeded (%q); want an error", tt.args, out)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("tsd health %v: error %v; want %q / %v", tt.args, err, tt.wantErr, tt.is)
			}
		})
	}
}

func TestHealthAddrFromEnv(t *testing.T) {
	t.Setenv("TSD_ADDR", healthServer(t, rpc.Config{}, true))
	if out, err := runTSD(t, "", "health"); err != nil || out != "SERVING\n" {
		t.Fatalf("tsd health with TSD_ADDR set: %q, %v", out, err)
	}
}
