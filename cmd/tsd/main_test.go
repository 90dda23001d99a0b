package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// runTSD runs the root command with args and stdin, returning stdout.
func runTSD(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetIn(strings.NewReader(stdin))
	root.SetOut(&out)
	root.SetErr(&bytes.Buffer{})
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestFlagsFromEnv(t *testing.T) {
	var n int
	var name string
	cmd := &cobra.Command{Use: "x"}
	cmd.Flags().IntVar(&n, "max-new-tokens", 1, "")
	cmd.Flags().StringVar(&name, "name", "a", "")
	if err := cmd.Flags().Set("name", "from-flag"); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"TSD_MAX_NEW_TOKENS": "64", "TSD_NAME": "from-env"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	if err := flagsFromEnv(cmd, lookup); err != nil {
		t.Fatal(err)
	}
	if n != 64 || name != "from-flag" {
		t.Fatalf("max-new-tokens %d (want 64 from env), name %q (the flag wins)", n, name)
	}
	env["TSD_MAX_NEW_TOKENS"] = "many"
	cmd2 := &cobra.Command{Use: "y"}
	cmd2.Flags().IntVar(&n, "max-new-tokens", 1, "")
	if err := flagsFromEnv(cmd2, lookup); err == nil || !strings.Contains(err.Error(), "TSD_MAX_NEW_TOKENS") {
		t.Fatalf("bad env value: %v", err)
	}
}
