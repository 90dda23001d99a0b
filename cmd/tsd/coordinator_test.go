package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// TestCoordinatorAndClusterCommands runs a one-node `tsd coordinator` configured by environment
// and reads it back with `tsd cluster`, as text and as JSON.
func TestCoordinatorAndClusterCommands(t *testing.T) {
	grpcAddr, metrics := freeAddr(t), freeAddr(t)
	t.Setenv("TSD_TOKEN", "cli-token")
	t.Setenv("TSD_DATA_DIR", filepath.Join(t.TempDir(), "n1"))
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var logs bytes.Buffer
	go func() {
		root := newRootCmd()
		root.SetOut(&logs)
		root.SetErr(&logs)
		root.SetArgs([]string{"coordinator", "--id", "n1", "--bootstrap", "self", "--grpc-addr", grpcAddr,
			"--raft-addr", "127.0.0.1:0", "--metrics-addr", metrics, "--heartbeat-timeout", "200ms", "--election-timeout", "200ms"})
		done <- root.ExecuteContext(ctx)
	}()

	var out string
	deadline := time.Now().Add(20 * time.Second)
	for {
		root := newRootCmd()
		var buf bytes.Buffer
		root.SetOut(&buf)
		root.SetErr(&buf)
		root.SetArgs([]string{"cluster", "--coordinators", grpcAddr, "--timeout", "1s"})
		if root.Execute() == nil && strings.Contains(buf.String(), "leader:    n1") {
			out = buf.String()
			break
		}
		if time.Now().After(deadline) {
			stop()
			t.Fatalf("no leader reported: %s\nlogs:\n%s", buf.String(), <-done)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(out, "voter, leader") || !strings.Contains(out, "versions:  0") {
		t.Fatalf("tsd cluster printed:\n%s", out)
	}
	var cs struct {
		LeaderID string `json:"leaderId"`
		Servers  []struct {
			GRPCAddr string `json:"grpcAddr"`
		} `json:"servers"`
	}
	out, err := runTSD(t, "", "cluster", "--coordinators", grpcAddr, "--json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(out), &cs); err != nil {
		t.Fatal(err)
	}
	if cs.LeaderID != "n1" || len(cs.Servers) != 1 || cs.Servers[0].GRPCAddr != grpcAddr {
		t.Fatalf("tsd cluster --json: %+v", cs)
	}
	if resp, err := http.Get("http://" + metrics + "/metrics"); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without the token: %v, %v", resp, err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+metrics+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer cli-token")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"tsd_coordinator_is_leader 1", `tsd_grpc_server_handled_total{code="OK",method="/tsd.v1.Coordinator/ClusterState"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	stop()
	if err := <-done; err != nil {
		t.Fatalf("coordinator exited with %v", err)
	}
}

func TestCoordinatorCommandErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no id", []string{"coordinator", "--data-dir", dir}, `"id"`},
		{"bad bootstrap", []string{"coordinator", "--id", "n1", "--data-dir", dir, "--bootstrap", "n1=x"}, "ID=RAFT_ADDR=GRPC_ADDR"},
		{"bootstrap without self", []string{"coordinator", "--id", "n9", "--data-dir", dir, "--raft-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--bootstrap", "n1=h:1=h:2"}, "does not include this node"},
		{"bad log level", []string{"coordinator", "--id", "n1", "--data-dir", dir, "--log-level", "loud"}, "--log-level"},
		{"cluster unreachable", []string{"cluster", "--coordinators", freeAddr(t), "--timeout", "300ms"}, "Unavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRootCmd()
			var buf bytes.Buffer
			root.SetOut(&buf)
			root.SetErr(&buf)
			root.SetArgs(tc.args)
			err := root.Execute()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want it to mention %s", err, tc.want)
			}
		})
	}
}
