package main

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"testing"

	"tsd/torch"
)

func runTSD(t *testing.T, args ...string) string {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		t.Fatalf("tsd %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestDoctorText(t *testing.T) {
	out := runTSD(t, "doctor", "--threads", "1")
	m := regexp.MustCompile(`(?m)^libtorch:\s+(\d+\.\d+)\.\d+\n^cuda:\s+(true|false) \((\d+) devices`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("doctor output not as documented:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[3]); (m[2] == "true") != (n > 0) {
		t.Fatalf("cuda %s with %d devices", m[2], n)
	}
	stubs := regexp.MustCompile(`(?m)^stubbed ops:\s+(\d+)$`).FindStringSubmatch(out)
	if stubs == nil || stubs[1] != strconv.Itoa(len(torch.StubbedOps())) {
		t.Fatalf("stubbed ops line %v, want %d", stubs, len(torch.StubbedOps()))
	}
	if !regexp.MustCompile(`(?m)^threads:\s+1 `).MatchString(out) {
		t.Fatalf("--threads 1 not reflected:\n%s", out)
	}
}

func TestDoctorJSONAndEnv(t *testing.T) {
	t.Setenv("TSD_THREADS", "2")
	var info torch.Info
	if err := json.Unmarshal([]byte(runTSD(t, "doctor", "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Threads != 2 || info.Version == "" {
		t.Fatalf("doctor --json with TSD_THREADS=2: %+v", info)
	}
}
