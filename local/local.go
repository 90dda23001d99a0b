// Package local runs a whole tsd system on one machine: a one-node raft coordinator, the learner
// and N actors, each a child process of the same binary talking real gRPC on loopback. It is what
// `tsd local` and the embedded default (`make run`) use, and what fault tests kill processes of.
package local

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"tsd/algo"
	"tsd/proto/tsd/v1"
)

// Config describes the system to run.
type Config struct {
	Binary   string // the tsd binary (default: this executable)
	DataDir  string // one folder per process, logs/, progress.jsonl
	Model    string // initial model directory
	Problems string
	Actors   int
	// Coordinators is the number of raft nodes: 1 (0 means 1) for development, 3 to have a
	// leader to kill. Node i serves gRPC on BasePort+i and raft on BasePort+100+i.
	Coordinators int
	// Algo is mcts, cispo, grpo or best-of-n; the learner and actors get matching settings.
	Algo string
	// BasePort: coordinator i's gRPC on BasePort+i, its raft +100+i, learner +200, actor i +300+i.
	BasePort int
	// Duration stops the run after this long (0: when the learner stops by itself, --max-steps).
	Duration time.Duration
	// Progress is how often the learner's status is printed and recorded.
	Progress time.Duration
	// LearnerArgs and ActorArgs are appended to those processes' command lines.
	LearnerArgs, ActorArgs []string
	// Env is added to every child's environment.
	Env []string
}

// Proc is a running child process.
type Proc struct {
	Name string
	cmd  *exec.Cmd
	done chan error
}

// Wait returns when the process has exited, with its exit error; it may be called again.
func (p *Proc) Wait() error {
	err := <-p.done
	p.done <- err
	return err
}

// Kill sends SIGKILL (a crash, for fault tests).
func (p *Proc) Kill() error { return p.cmd.Process.Kill() }

// Stop asks the process to finish (SIGTERM) and waits up to grace before killing it.
func (p *Proc) Stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return nil // already gone
	}
	select {
	case err := <-p.done:
		p.done <- err
		return err
	case <-time.After(grace):
		p.cmd.Process.Kill() //nolint:errcheck
		return p.Wait()
	}
}

// System is the running set of processes.
type System struct {
	cfg          Config
	log          *slog.Logger
	Coordinators []*Proc
	Learner      *Proc
	Actors       []*Proc
	mu           sync.Mutex
}

// Addresses of the roles.
func (c Config) coordAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(c.BasePort+i) }
func (c Config) raftAddr(i int) string  { return "127.0.0.1:" + strconv.Itoa(c.BasePort+100+i) }
func (c Config) LearnerAddr() string    { return "127.0.0.1:" + strconv.Itoa(c.BasePort+200) }
func (c Config) actorAddr(i int) string { return "127.0.0.1:" + strconv.Itoa(c.BasePort+300+i) }

// Start launches the coordinator, the learner and the actors, each once the one before is up.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*System, error) {
	if cfg.Binary == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Binary = exe
	}
	a, err := algo.Lookup(cfg.Algo)
	if err != nil {
		return nil, fmt.Errorf("local: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "logs"), 0o755); err != nil {
		return nil, err
	}
	s := &System{cfg: cfg, log: log}
	if err := s.startCoordinators(ctx); err != nil {
		s.Stop()
		return nil, err
	}
	args := append([]string{"learner", "--coordinators", cfg.CoordinatorAddrs(), "--addr", cfg.LearnerAddr(),
		"--data-dir", filepath.Join(cfg.DataDir, "learner"), "--model", cfg.Model, "--algo", cfg.Algo}, cfg.LearnerArgs...)
	if s.Learner, err = s.spawn("learner", args...); err != nil {
		s.Stop()
		return nil, err
	}
	if err := waitServing(ctx, cfg.LearnerAddr(), s.Learner); err != nil {
		s.Stop()
		return nil, fmt.Errorf("learner: %w", err)
	}
	for i := range cfg.Actors {
		if _, err := s.StartActor(i, string(a.Rollout)); err != nil {
			s.Stop()
			return nil, err
		}
	}
	return s, nil
}

// coordinators is the number of raft nodes to run.
func (c Config) coordinators() int { return max(c.Coordinators, 1) }

// CoordinatorID is coordinator i's raft id.
func (c Config) CoordinatorID(i int) string {
	if c.coordinators() == 1 {
		return "local"
	}
	return fmt.Sprintf("c%d", i)
}

// CoordinatorAddrs lists the coordinators' gRPC addresses, comma-separated, as --coordinators
// takes them.
func (c Config) CoordinatorAddrs() string {
	addrs := make([]string, c.coordinators())
	for i := range addrs {
		addrs[i] = c.coordAddr(i)
	}
	return strings.Join(addrs, ",")
}

// startCoordinators launches the raft nodes and waits until each serves (knows a leader).
func (s *System) startCoordinators(ctx context.Context) error {
	c := s.cfg
	bootstrap := "self"
	if c.coordinators() > 1 {
		peers := make([]string, c.coordinators())
		for i := range peers {
			peers[i] = c.CoordinatorID(i) + "=" + c.raftAddr(i) + "=" + c.coordAddr(i)
		}
		bootstrap = strings.Join(peers, ",")
	}
	for i := range c.coordinators() {
		name := "coordinator"
		if c.coordinators() > 1 {
			name = fmt.Sprintf("coordinator-%d", i)
		}
		p, err := s.spawn(name, "coordinator", "--id", c.CoordinatorID(i), "--grpc-addr", c.coordAddr(i),
			"--raft-addr", c.raftAddr(i), "--data-dir", filepath.Join(c.DataDir, name), "--bootstrap", bootstrap)
		if err != nil {
			return err
		}
		s.Coordinators = append(s.Coordinators, p)
	}
	for i, p := range s.Coordinators {
		if err := waitServing(ctx, c.coordAddr(i), p); err != nil {
			return fmt.Errorf("%s: %w", p.Name, err)
		}
	}
	return nil
}

// StartActor launches (or relaunches) actor i; extra flags follow Config.ActorArgs (and so win
// over them).
func (s *System) StartActor(i int, algo string, extra ...string) (*Proc, error) {
	c := s.cfg
	name := fmt.Sprintf("actor-%d", i)
	args := append([]string{"actor", "--coordinators", c.CoordinatorAddrs(), "--id", name, "--addr", c.actorAddr(i),
		"--data-dir", filepath.Join(c.DataDir, name), "--model", c.Model, "--problems", c.Problems, "--algo", algo,
		"--seed", strconv.Itoa(i + 1)}, c.ActorArgs...)
	args = append(args, extra...)
	p, err := s.spawn(name, args...)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.Actors) <= i {
		s.Actors = append(s.Actors, nil)
	}
	s.Actors[i] = p
	return p, nil
}

// RestartLearner launches the learner again with the same arguments (after a kill).
func (s *System) RestartLearner(ctx context.Context) error {
	args := append([]string{"learner", "--coordinators", s.cfg.CoordinatorAddrs(), "--addr", s.cfg.LearnerAddr(),
		"--data-dir", filepath.Join(s.cfg.DataDir, "learner"), "--model", s.cfg.Model, "--algo", s.cfg.Algo}, s.cfg.LearnerArgs...)
	p, err := s.spawn("learner", args...)
	if err != nil {
		return err
	}
	s.Learner = p
	return waitServing(ctx, s.cfg.LearnerAddr(), p)
}

// spawn starts one child with its output appended to logs/<name>.log.
func (s *System) spawn(name string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(s.cfg.Binary, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), s.cfg.Env...)
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &Proc{Name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		f.Close()
		p.done <- err
	}()
	s.log.Debug("started", "process", name, "pid", cmd.Process.Pid)
	return p, nil
}

// waitServing polls addr's gRPC health until it is SERVING, the process dies, or ctx ends.
func waitServing(ctx context.Context, addr string, p *Proc) error {
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			p.done <- err
			return fmt.Errorf("exited before serving: %v (see its log)", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if serving(ctx, conn) {
			return nil
		}
	}
	return errors.New("not serving after 2 minutes")
}

// Stop ends every process, actors first.
func (s *System) Stop() {
	var wg sync.WaitGroup
	s.mu.Lock()
	actors := append([]*Proc(nil), s.Actors...)
	s.mu.Unlock()
	for _, p := range actors {
		if p != nil {
			wg.Add(1)
			go func() { defer wg.Done(); p.Stop(10 * time.Second) }() //nolint:errcheck
		}
	}
	wg.Wait()
	if s.Learner != nil {
		s.Learner.Stop(30 * time.Second) //nolint:errcheck
	}
	for _, p := range s.Coordinators {
		wg.Add(1)
		go func() { defer wg.Done(); p.Stop(10 * time.Second) }() //nolint:errcheck
	}
	wg.Wait()
}

// Status asks the learner for its status.
func (s *System) Status(ctx context.Context) (*tsdv1.StatusResponse, error) {
	conn, err := grpc.NewClient(s.cfg.LearnerAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return tsdv1.NewLearnerClient(conn).Status(ctx, &tsdv1.StatusRequest{})
}

// ProgressRecord is one line of progress.jsonl.
type ProgressRecord struct {
	Seconds     float64 `json:"seconds"`
	Step        uint64  `json:"step"`
	Version     uint64  `json:"version"`
	RewardMean  float64 `json:"reward_mean"`
	CorrectRate float64 `json:"correct_rate"`
	Rollouts    uint64  `json:"rollouts_trained"`
	RolloutsPS  float64 `json:"rollouts_per_s"`
	Buffer      uint64  `json:"buffer"`
	Actors      int     `json:"actors"`
}

// Watch prints the learner's progress every cfg.Progress to w and appends it to progress.jsonl
// until the learner exits or the duration is over; then it stops the system.
func (s *System) Watch(ctx context.Context, w io.Writer) error {
	f, err := os.OpenFile(filepath.Join(s.cfg.DataDir, "progress.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	bw := bufio.NewWriter(f)
	defer bw.Flush()
	start := time.Now()
	var deadline <-chan time.Time
	if s.cfg.Duration > 0 {
		deadline = time.After(s.cfg.Duration)
	}
	tick := time.NewTicker(s.cfg.Progress)
	defer tick.Stop()
	for {
		select {
		case err := <-s.Learner.done:
			s.Learner.done <- err
			s.record(ctx, bw, w, start)
			s.Stop()
			if err != nil {
				return fmt.Errorf("learner: %w (see %s)", err, filepath.Join(s.cfg.DataDir, "logs", "learner.log"))
			}
			return nil
		case <-deadline:
			s.record(ctx, bw, w, start)
			s.Stop()
			return nil
		case <-ctx.Done():
			s.Stop()
			return ctx.Err()
		case <-tick.C:
			s.record(ctx, bw, w, start)
		}
	}
}

func (s *System) record(ctx context.Context, bw *bufio.Writer, w io.Writer, start time.Time) {
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := s.Status(sctx)
	if err != nil {
		return
	}
	r := ProgressRecord{Seconds: time.Since(start).Seconds(), Step: st.GetStep(), Version: st.GetVersion(),
		RewardMean: st.GetReward().GetMean(), CorrectRate: st.GetCorrectRate(), Rollouts: st.GetRolloutsTrained(),
		RolloutsPS: st.GetRolloutsPerSec(), Buffer: st.GetBufferDepth(), Actors: len(st.GetActors())}
	b, _ := json.Marshal(r)
	bw.Write(append(b, '\n')) //nolint:errcheck
	bw.Flush()                //nolint:errcheck
	fmt.Fprintf(w, "[%5.0fs] step %4d  v%-3d reward %+.3f  correct %5.1f%%  trained %5d rollouts (%.2f/s)  buffer %3d  actors %d\n",
		r.Seconds, r.Step, r.Version, r.RewardMean, 100*r.CorrectRate, r.Rollouts, r.RolloutsPS, r.Buffer, r.Actors)
}

// serving reports whether the gRPC health service at conn says SERVING.
func serving(ctx context.Context, conn *grpc.ClientConn) bool {
	hctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	resp, err := healthpb.NewHealthClient(conn).Check(hctx, &healthpb.HealthCheckRequest{})
	return err == nil && resp.GetStatus() == healthpb.HealthCheckResponse_SERVING
}
