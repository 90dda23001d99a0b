package coordinator

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	tsdv1 "tsd/proto/tsd/v1"
	"tsd/rpc"
)

// coordProc is one `tsd coordinator` process of the acceptance test.
type coordProc struct {
	id, grpc, raft, dir, log string
	cmd                      *exec.Cmd
}

// TestProcessLeaderKill is the acceptance test: three real `tsd coordinator` processes on
// loopback; the raft leader is killed with SIGKILL; a new leader takes over, publishing continues
// through the survivors, a second learner is refused, a restarted learner fences its stale self,
// and the killed node rejoins from its data dir and catches up.
func TestProcessLeaderKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds tsd and starts processes")
	}
	bin := buildTSD(t)
	procs := newProcs(t, 3)
	const token = "acceptance-token"
	for _, p := range procs {
		p.start(t, bin, procs, token)
	}
	rc := rpc.Config{Token: token}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	all := dialClient(t, rc, procs[0].grpc, procs[1].grpc, procs[2].grpc)

	leader := waitLeader(ctx, t, all, "")
	run := testRun("acceptance")
	acquire := func(c *Client, id string) (uint64, error) {
		resp, err := c.AcquireLearnerLease(ctx, &tsdv1.AcquireLearnerLeaseRequest{LearnerId: id, Addr: id + ".test:7201", Run: runToProto(&run), TtlMs: 60_000})
		return resp.GetLease().GetEpoch(), err
	}
	stale, err := acquire(all, "learner-a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.PublishVersion(ctx, protoVersion(testVersion(1, 8, stale))); err != nil {
		t.Fatal(err)
	}

	var dead *coordProc
	for _, p := range procs {
		if p.id == leader {
			dead = p
		}
	}
	dead.kill(t)
	var survivors []string
	for _, p := range procs {
		if p != dead {
			survivors = append(survivors, p.grpc)
		}
	}
	rest := dialClient(t, rc, survivors...)
	newLeader := waitLeader(ctx, t, rest, dead.id)
	t.Logf("killed leader %s; %s took over", dead.id, newLeader)

	if _, err := acquire(rest, "learner-b"); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second learner while the lease lives: %v, want ErrLeaseHeld", err)
	}
	epoch, err := acquire(rest, "learner-a") // learner-a restarted: a new epoch fences the old process
	if err != nil || epoch <= stale {
		t.Fatalf("restarted learner: epoch %d (stale %d), %v", epoch, stale, err)
	}
	for v := uint64(2); v <= 3; v++ {
		if _, err := rest.PublishVersion(ctx, protoVersion(testVersion(v, 8*v, epoch))); err != nil {
			t.Fatalf("publish %d through the survivors: %v", v, err)
		}
	}
	if _, err := rest.PublishVersion(ctx, protoVersion(testVersion(4, 32, stale))); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale learner publish: %v, want ErrFenced", err)
	}
	if _, err := rest.RenewLearnerLease(ctx, "learner-a", stale, time.Minute); !errors.Is(err, ErrFenced) {
		t.Fatalf("stale learner renew: %v, want ErrFenced", err)
	}
	checkWatch(ctx, t, rest, 3)

	dead.start(t, bin, procs, token)
	revived := dialClient(t, rc, dead.grpc)
	waitFor(t, 30*time.Second, "the restarted node to catch up", func() bool {
		v, err := revived.GetVersion(ctx, 0)
		return err == nil && v.GetVersion() == 3 && v.GetLearnerEpoch() == epoch
	})
}

// buildTSD builds the tsd binary into a temporary directory.
func buildTSD(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "tsd")
	out, err := exec.Command("go", "build", "-o", bin, "tsd/cmd/tsd").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// newProcs reserves loopback ports for n nodes. The ports are free when chosen; a process that
// starts later could in principle lose one to another program, which would fail the test loudly.
func newProcs(t *testing.T, n int) []*coordProc {
	t.Helper()
	var lis []net.Listener
	addr := func() string {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lis = append(lis, l)
		return l.Addr().String()
	}
	dir := t.TempDir()
	var procs []*coordProc
	for i := range n {
		id := fmt.Sprintf("n%d", i+1)
		procs = append(procs, &coordProc{id: id, grpc: addr(), raft: addr(), dir: filepath.Join(dir, id), log: filepath.Join(dir, id+".log")})
	}
	for _, l := range lis {
		_ = l.Close()
	}
	return procs
}

func (p *coordProc) start(t *testing.T, bin string, all []*coordProc, token string) {
	t.Helper()
	var peers []string
	for _, q := range all {
		peers = append(peers, q.id+"="+q.raft+"="+q.grpc)
	}
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	p.cmd = exec.Command(bin, "coordinator", "--id", p.id, "--grpc-addr", p.grpc, "--raft-addr", p.raft,
		"--data-dir", p.dir, "--bootstrap", strings.Join(peers, ","),
		"--heartbeat-timeout", "300ms", "--election-timeout", "300ms", "--log-level", "debug")
	p.cmd.Env = append(os.Environ(), "TSD_TOKEN="+token)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	cmd := p.cmd
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
		if t.Failed() || os.Getenv("TSD_TEST_LOG") != "" {
			b, _ := os.ReadFile(p.log)
			t.Logf("log of %s:\n%s", p.id, tail(string(b), 60))
		}
	})
}

func (p *coordProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = p.cmd.Wait()
}

func tail(s string, lines int) string {
	ls := strings.Split(s, "\n")
	return strings.Join(ls[max(0, len(ls)-lines):], "\n")
}

// waitLeader polls until the cluster reports a leader other than not, and returns its id.
func waitLeader(ctx context.Context, t *testing.T, c *Client, not string) string {
	t.Helper()
	var id string
	waitFor(t, 30*time.Second, "a leader", func() bool {
		cs, err := c.ClusterState(ctx)
		id = cs.GetLeaderId()
		return err == nil && id != "" && id != not && len(cs.GetServers()) == 3
	})
	return id
}

// checkWatch reads the versions from the start and requires 1..n in order.
func checkWatch(ctx context.Context, t *testing.T, c *Client, n uint64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []uint64
	done := errors.New("done")
	err := c.WatchVersions(ctx, 0, func(v *tsdv1.PolicyVersion) error {
		got = append(got, v.GetVersion())
		if uint64(len(got)) == n {
			return done
		}
		return nil
	})
	if !errors.Is(err, done) {
		t.Fatalf("watch: %v after %v", err, got)
	}
	for i, v := range got {
		if v != uint64(i+1) {
			t.Fatalf("watched versions %v, want 1..%d in order", got, n)
		}
	}
}
