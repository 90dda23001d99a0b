package local

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"tsd/coordinator"
	"tsd/rpc"
	"tsd/rpc/rpctest"
)

// syncBuffer is a process's stderr, read while the process runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startActorAt starts a `tsd actor` whose only coordinator is addr, with extra flags and
// environment; it returns the process, its stderr, and a channel that yields its exit.
func startActorAt(t *testing.T, f fixtureFiles, addr string, env []string, extra ...string) (*exec.Cmd, *syncBuffer, <-chan error) {
	t.Helper()
	args := append([]string{"actor", "--coordinators", addr, "--id", "a1", "--data-dir", t.TempDir(),
		"--model", f.model, "--problems", f.problems, "--threads", "1", "--prompt-style", "compact"}, extra...)
	cmd := exec.Command(f.bin, args...)
	stderr := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = io.Discard, stderr
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		done <- cmd.Wait()
		close(done) // later receives (the cleanup's) return at once
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		if t.Failed() {
			t.Logf("actor stderr:\n%s", stderr.String())
		}
	})
	return cmd, stderr, done
}

// TestActorWarnsUnreachableCoordinator: an actor pointed at an address where nothing listens
// says so at WARN, naming the address and the cause, within 10 s of its start, and keeps
// retrying (it does not exit).
func TestActorWarnsUnreachableCoordinator(t *testing.T) {
	f := files(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	_, stderr, done := startActorAt(t, f, addr, nil)
	deadline := time.After(10 * time.Second)
	for {
		if line := warnLine(stderr.String(), addr); line != "" {
			if !strings.Contains(line, "connection refused") {
				t.Fatalf("warning without the cause: %s", line)
			}
			t.Log(line)
			break
		}
		select {
		case err := <-done:
			t.Fatalf("actor exited (%v) instead of retrying", err)
		case <-deadline:
			t.Fatalf("no WARN naming %s within 10 s", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
	select {
	case err := <-done:
		t.Fatalf("actor exited (%v) instead of retrying", err)
	case <-time.After(2 * time.Second):
	}
}

// warnLine is the first WARN line of a text log that names addr.
func warnLine(log, addr string) string {
	for line := range strings.SplitSeq(log, "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, addr) {
			return line
		}
	}
	return ""
}

// TestActorTLSMisconfigExits: against a coordinator serving mutual TLS with a token, an actor
// whose TLS or token flags are missing or wrong exits non-zero at once, and its last line names
// the flag.
func TestActorTLSMisconfigExits(t *testing.T) {
	f := files(t)
	dir := t.TempDir()
	ca := rpctest.NewCA(t, dir, "ca")
	cert, key := ca.Issue(t, dir, "node")
	rc := rpc.Config{Token: "t0k", TLSCert: cert, TLSKey: key, TLSCA: ca.CertFile}
	cfg := coordinator.DefaultConfig()
	cfg.NodeID, cfg.RaftAddr, cfg.GRPCAddr, cfg.DataDir = "n1", "127.0.0.1:0", "127.0.0.1:0", filepath.Join(dir, "n1")
	cfg.Bootstrap = []coordinator.Peer{{ID: "n1"}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	svc, err := coordinator.Start(ctx, cfg, rc, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	token := []string{"TSD_TOKEN=t0k"}
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		flag string
	}{
		{"cert and key without CA", token, []string{"--tls-cert", cert, "--tls-key", key}, "--tls-ca"},
		{"no TLS flags", token, nil, "--tls-ca"},
		{"no client certificate", token, []string{"--tls-ca", ca.CertFile}, "--tls-cert"},
		{"wrong token", []string{"TSD_TOKEN=nope"}, []string{"--tls-ca", ca.CertFile, "--tls-cert", cert, "--tls-key", key}, "--token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, done := startActorAt(t, f, svc.GRPCAddr(), tc.env, tc.args...)
			select {
			case err := <-done:
				var exit *exec.ExitError
				if !errors.As(err, &exit) || exit.ExitCode() == 0 {
					t.Fatalf("actor ended with %v, want a non-zero exit", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("actor still running after 20 s")
			}
			lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
			last := lines[len(lines)-1]
			if !strings.HasPrefix(last, "tsd: ") || !strings.Contains(last, tc.flag) {
				t.Fatalf("last line %q; want the error naming %s", last, tc.flag)
			}
			t.Log(last)
		})
	}
}
