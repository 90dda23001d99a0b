package coordinator

import (
	"bytes"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

func TestCommandValidation(t *testing.T) {
	good := testVersion(1, 1, 1)
	with := func(f func(v *Version)) *command {
		v := good
		f(&v)
		return &command{Op: opPublish, NowUnixMs: 1, Publish: &v}
	}
	run := testRun("r")
	badRun := func(f func(r *RunConfig)) *command {
		r := run
		f(&r)
		return &command{Op: opAcquireLease, NowUnixMs: 1, Acquire: &AcquireLease{LearnerID: "l", Addr: "h:1", Run: r, TTLMs: 1}}
	}
	for _, tc := range []struct {
		name string
		cmd  *command
	}{
		{"actor id with replacement-free control", &command{Op: opDeregisterActor, NowUnixMs: 1, ActorID: "a\tb"}},
		{"no time", &command{Op: opDeregisterActor, ActorID: "x"}},
		{"unknown op", &command{Op: "drop_table", NowUnixMs: 1, ActorID: "x"}},
		{"no payload", &command{Op: opPublish, NowUnixMs: 1}},
		{"two payloads", &command{Op: opPublish, NowUnixMs: 1, Publish: &good, ActorID: "x"}},
		{"payload of another op", &command{Op: opRenewLease, NowUnixMs: 1, Publish: &good}},
		{"version 0", with(func(v *Version) { v.Version = 0 })},
		{"short digest", with(func(v *Version) { v.SHA256 = "abc" })},
		{"uppercase digest", with(func(v *Version) { v.SHA256 = strings.ToUpper(v.SHA256) })},
		{"zero size", with(func(v *Version) { v.SizeBytes = 0 })},
		{"no epoch", with(func(v *Version) { v.LearnerEpoch = 0 })},
		{"negative time", with(func(v *Version) { v.CreatedUnixMs = -1 })},
		{"fetch addr without port", with(func(v *Version) { v.FetchAddr = "learner" })},
		{"fetch addr port 0", with(func(v *Version) { v.FetchAddr = "learner:0" })},
		{"fetch addr without host", with(func(v *Version) { v.FetchAddr = ":7201" })},
		{"fetch addr too long", with(func(v *Version) { v.FetchAddr = strings.Repeat("h", 300) + ":1" })},
		{"empty run id", badRun(func(r *RunConfig) { r.RunID = "" })},
		{"config digest mismatch", badRun(func(r *RunConfig) { r.ConfigJSON = []byte(`{}`) })},
		{"config too large", badRun(func(r *RunConfig) { r.ConfigJSON = make([]byte, maxConfigBytes+1) })},
		{"learner id with space", &command{Op: opAcquireLease, NowUnixMs: 1, Acquire: &AcquireLease{LearnerID: "a b", Addr: "h:1", Run: run, TTLMs: 1}}},
		{"ttl 0 reaching the log", &command{Op: opAcquireLease, NowUnixMs: 1, Acquire: &AcquireLease{LearnerID: "l", Addr: "h:1", Run: run}}},
		{"ttl over an hour", &command{Op: opRegisterActor, NowUnixMs: 1, Register: &RegisterActor{ActorID: "a", TTLMs: time.Hour.Milliseconds() + 1}}},
		{"renew epoch 0", &command{Op: opRenewLease, NowUnixMs: 1, Renew: &RenewLease{LearnerID: "l", TTLMs: 1}}},
		{"actor id control char", &command{Op: opHeartbeat, NowUnixMs: 1, Heartbeat: &Heartbeat{ActorID: "a\x00", TTLMs: 1}}},
		{"actor id too long", &command{Op: opDeregisterActor, NowUnixMs: 1, ActorID: strings.Repeat("a", maxIDBytes+1)}},
		{"actor addr bad", &command{Op: opRegisterActor, NowUnixMs: 1, Register: &RegisterActor{ActorID: "a", Addr: "nope", TTLMs: 1}}},
		{"source without actor", &command{Op: opAssignSource, NowUnixMs: 1, Source: &SourceRequest{}}},
		{"empty node list", &command{Op: opSetNodes, NowUnixMs: 1, Nodes: []NodeInfo{}}},
		{"node without grpc addr", &command{Op: opSetNodes, NowUnixMs: 1, Nodes: []NodeInfo{{ID: "n", RaftAddr: "h:1"}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.cmd.validate(); !errors.Is(err, ErrInvalid) {
				t.Fatalf("validate: %v, want ErrInvalid", err)
			}
			b, _ := json.Marshal(tc.cmd)
			if _, err := decodeCommand(b); !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode: %v, want ErrInvalid", err)
			}
		})
	}
	// JSON cannot carry invalid UTF-8 (it becomes U+FFFD), but a request can.
	if err := checkID("actor_id", "\xff"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("invalid UTF-8 id: %v", err)
	}
}

func TestDecodeCommandRejectsGarbage(t *testing.T) {
	for _, in := range []string{"", "{", "[]", `{"op":"publish"} {}`, `{"op":1}`} {
		if _, err := decodeCommand([]byte(in)); !errors.Is(err, ErrInvalid) {
			t.Errorf("decode %q: %v, want ErrInvalid", in, err)
		}
	}
	// A committed entry that does not decode is an error result, not a crash of every node.
	res := NewFSM().Apply(&raft.Log{Index: 1, Data: []byte("junk")}).(result)
	if !errors.Is(res.err, ErrInvalid) {
		t.Fatalf("Apply of junk: %v", res.err)
	}
}

// FuzzDecodeCommand checks that any log entry either fails to decode or decodes to a command
// that re-encodes to an equal command and applies without panicking.
func FuzzDecodeCommand(f *testing.F) {
	v := testVersion(1, 8, 1)
	run := testRun("r")
	for _, c := range []*command{
		acquire("a", run, 1000), renew("a", 1, 1000), publish(v), register("x", "x:1", 10),
		heartbeat("x", 1, 10), {Op: opDeregisterActor, ActorID: "x"}, source("x", 0),
		{Op: opSetNodes, Nodes: []NodeInfo{{ID: "n1", RaftAddr: "h:1", GRPCAddr: "h:2"}}},
	} {
		c.NowUnixMs = 5
		b, _ := c.encode()
		f.Add(b)
	}
	f.Add([]byte(`{"op":"publish","now_unix_ms":1,"publish":{"version":18446744073709551615}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCommand(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("decode error %v is not ErrInvalid", err)
			}
			return
		}
		b, err := c.encode()
		if err != nil {
			t.Fatal(err)
		}
		again, err := decodeCommand(b)
		if err != nil {
			t.Fatalf("re-decode of %s: %v", b, err)
		}
		if b2, _ := again.encode(); !bytes.Equal(b, b2) {
			t.Fatalf("encoding not stable:\n%s\n%s", b, b2)
		}
		a := newApplier(t)
		a.must(acquire("a", run, 1000))
		a.must(publish(v))
		a.must(register("x", "x:1", 1000))
		a.fsm.Apply(&raft.Log{Index: 9, Data: data})
	})
}

func TestParsePeers(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []Peer
		ok   bool
	}{
		{"n1=127.0.0.1:7101=127.0.0.1:7001", []Peer{{ID: "n1", RaftAddr: "127.0.0.1:7101", GRPCAddr: "127.0.0.1:7001"}}, true},
		{"n1=a:1=a:2, n2=b:1=b:2", []Peer{{ID: "n1", RaftAddr: "a:1", GRPCAddr: "a:2"}, {ID: "n2", RaftAddr: "b:1", GRPCAddr: "b:2"}}, true},
		{"", nil, false},
		{"n1", nil, false},
		{"n1=a:1", nil, false},
		{"n1=a:1=a:2=x", nil, false},
		{"n1=a:1=a:2,", nil, false},
		{"=a:1=a:2", nil, false},
		{"n1=a=a:2", nil, false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePeers(tc.in)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("err %v, ok=%v", err, tc.ok)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func FuzzParsePeers(f *testing.F) {
	f.Add("n1=127.0.0.1:7101=127.0.0.1:7001,n2=h:1=h:2")
	f.Add("a=b=c")
	f.Fuzz(func(t *testing.T, s string) {
		peers, err := ParsePeers(s)
		if err != nil {
			return
		}
		for _, p := range peers {
			if p.validate() != nil {
				t.Fatalf("accepted invalid peer %+v", p)
			}
		}
	})
}

func TestConfigValidate(t *testing.T) {
	base := DefaultConfig()
	base.NodeID, base.RaftAddr, base.GRPCAddr = "n1", "h:1", "h:2"
	self := Peer{ID: "n1", RaftAddr: "h:1", GRPCAddr: "h:2"}
	other := Peer{ID: "n2", RaftAddr: "g:1", GRPCAddr: "g:2"}
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		ok   bool
	}{
		{"default", func(*Config) {}, true},
		{"bootstrap", func(c *Config) { c.Bootstrap = []Peer{self, other} }, true},
		{"bootstrap self without addresses", func(c *Config) { c.Bootstrap = []Peer{{ID: "n1"}} }, true},
		{"no id", func(c *Config) { c.NodeID = "" }, false},
		{"zero apply timeout", func(c *Config) { c.ApplyTimeout = 0 }, false},
		{"zero election timeout", func(c *Config) { c.ElectionTimeout = 0 }, false},
		{"actor ttl too long", func(c *Config) { c.ActorTTL = 2 * time.Hour }, false},
		{"zero snapshot threshold", func(c *Config) { c.SnapshotThreshold = 0 }, false},
		{"bootstrap without self", func(c *Config) { c.Bootstrap = []Peer{other} }, false},
		{"bootstrap twice", func(c *Config) { c.Bootstrap = []Peer{self, self} }, false},
		{"bootstrap self elsewhere", func(c *Config) { c.Bootstrap = []Peer{{ID: "n1", RaftAddr: "x:1", GRPCAddr: "h:2"}} }, false},
		{"bootstrap bad peer", func(c *Config) { c.Bootstrap = []Peer{self, {ID: "n2", RaftAddr: "g"}} }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.Validate()
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Fatalf("Validate: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
