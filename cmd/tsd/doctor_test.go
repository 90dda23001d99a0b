package main

import (
	"encoding/json"
	"regexp"
	"strconv"
	"testing"

	"tsd/tensor"
)

// doctor runs tsd doctor with args and returns its output.
func doctor(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runTSD(t, "", append([]string{"doctor"}, args...)...)
	if err != nil {
		t.Fatalf("tsd doctor %v: %v", args, err)
	}
	return out
}

func TestDoctorText(t *testing.T) {
	out := doctor(t, "--threads", "1")
	m := regexp.MustCompile(`(?m)^libtorch:\s+(\d+\.\d+)\.\d+\n^cuda:\s+(true|false) \((\d+) devices`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("doctor output not as documented:\n%s", out)
	}
	if n, _ := strconv.Atoi(m[3]); (m[2] == "true") != (n > 0) {
		t.Fatalf("cuda %s with %d devices", m[2], n)
	}
	if !regexp.MustCompile(`(?m)^build:\s+(cpu|cuda \(.*\))$`).MatchString(out) {
		t.Fatalf("no build line:\n%s", out)
	}
	stubs := regexp.MustCompile(`(?m)^stubbed ops:\s+(\d+)$`).FindStringSubmatch(out)
	if stubs == nil || stubs[1] != strconv.Itoa(len(tensor.StubbedOps())) {
		t.Fatalf("stubbed ops line %v, want %d", stubs, len(tensor.StubbedOps()))
	}
	if !regexp.MustCompile(`(?m)^threads:\s+1 `).MatchString(out) {
		t.Fatalf("--threads 1 not reflected:\n%s", out)
	}
}

func TestDoctorJSONAndEnv(t *testing.T) {
	t.Setenv("TSD_THREADS", "2")
	var info tensor.Info
	if err := json.Unmarshal([]byte(doctor(t, "--json")), &info); err != nil {
		t.Fatal(err)
	}
	if info.Threads != 2 || info.Version == "" {
		t.Fatalf("doctor --json with TSD_THREADS=2: %+v", info)
	}
}
