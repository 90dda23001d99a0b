package rolloutlog

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
)

const (
	crashDirEnv      = "ROLLOUTLOG_CRASH_DIR"
	crashActors      = 8
	crashTokens      = 50
	crashSegmentSize = 64 << 10 // small, so that kills also land around segment rotation
)

// TestCrashChild is the process TestKill9 kills: it appends from several actors as fast as the
// disk allows and prints "ack actor seq index duplicate" for every Append that returned.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashDirEnv)
	if dir == "" {
		t.Skip("helper process for TestKill9")
	}
	l, err := Open(dir, Options{SegmentBytes: crashSegmentSize})
	if err != nil {
		fmt.Fprintln(os.Stderr, "open:", err)
		os.Exit(2)
	}
	var out sync.Mutex
	var wg sync.WaitGroup
	for a := range crashActors {
		actor := fmt.Sprint("actor-", a)
		// An actor that crashed does not know which of its last sends were acked: it resends.
		seq := uint64(1)
		if last := l.LastSeq(actor); last > 2 {
			seq = last - 2
		}
		wg.Go(func() {
			for ; ; seq++ {
				e, err := l.Append(context.Background(), testRollout(actor, seq, crashTokens))
				if err != nil {
					fmt.Fprintln(os.Stderr, "append:", err)
					os.Exit(2)
				}
				out.Lock()
				fmt.Fprintf(os.Stdout, "ack %s %d %d %t\n", actor, seq, e.Index, e.Duplicate)
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestKill9 kills a process appending with fsync at a random moment, several times over, and
// checks after each kill that every acknowledged rollout is in the log exactly once.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns processes")
	}
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(9, 9))
	acked := map[string]map[uint64]bool{}
	for round := range 4 {
		acks := runAndKill(t, dir, 100+rng.IntN(800))
		opts, _ := quietOptions(crashSegmentSize)
		l := mustOpen(t, dir, opts)
		recs := readAll(t, l)
		for _, a := range acks {
			if acked[a.actor] == nil {
				acked[a.actor] = map[uint64]bool{}
			}
			acked[a.actor][a.seq] = true
			if !a.duplicate {
				checkAckedRecord(t, recs, a)
			}
		}
		checkEveryAckPresent(t, recs, acked)
		t.Logf("round %d: %d acks, %d records, %d segments, torn %q", round, len(acks),
			len(recs), l.Recovery().Segments, l.Recovery().Torn)
		mustClose(t, l)
	}
}

type ack struct {
	actor     string
	seq       uint64
	index     uint64
	duplicate bool
}

// runAndKill starts TestCrashChild on dir, sends SIGKILL after n acks, and returns every ack
// the child printed before it died.
func runAndKill(t *testing.T, dir string, n int) []ack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashChild$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acks []ack
	lines := bufio.NewScanner(stdout)
	for lines.Scan() {
		var a ack
		if _, err := fmt.Sscanf(lines.Text(), "ack %s %d %d %t", &a.actor, &a.seq, &a.index, &a.duplicate); err != nil {
			continue // not an ack line
		}
		if acks = append(acks, a); len(acks) == n {
			if err := cmd.Process.Kill(); err != nil { // SIGKILL: no deferred code, no flush
				t.Fatal(err)
			}
		}
	}
	err = cmd.Wait()
	if len(acks) < n || err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child ended with %v after %d acks, want it killed after %d; stderr:\n%s", err, len(acks), n, stderr.String())
	}
	return acks
}

// checkAckedRecord asserts that a new record is at the index Append returned.
func checkAckedRecord(t *testing.T, recs []Record, a ack) {
	t.Helper()
	if a.index < 1 || a.index > uint64(len(recs)) {
		t.Fatalf("acked %s/%d at index %d, but the log has %d records", a.actor, a.seq, a.index, len(recs))
	}
	if got := recs[a.index-1].Rollout; !proto.Equal(got, testRollout(a.actor, a.seq, crashTokens)) {
		t.Fatalf("index %d holds %s/%d, acked as %s/%d", a.index, got.ActorId, got.Seq, a.actor, a.seq)
	}
}

// checkEveryAckPresent asserts that the log holds every acked (actor, seq) exactly once.
func checkEveryAckPresent(t *testing.T, recs []Record, acked map[string]map[uint64]bool) {
	t.Helper()
	count := map[string]map[uint64]int{}
	for _, rec := range recs {
		r := rec.Rollout
		if count[r.ActorId] == nil {
			count[r.ActorId] = map[uint64]int{}
		}
		count[r.ActorId][r.Seq]++
	}
	for actor, seqs := range acked {
		for seq := range seqs {
			if c := count[actor][seq]; c != 1 {
				t.Errorf("acked %s/%d is in the log %d times, want once", actor, seq, c)
			}
		}
	}
}
