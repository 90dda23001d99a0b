// Command tsd runs every role of the tree-search distillation system (coordinator, learner, actor)
// and the tools around them, one subcommand each.
package main

import (
	"fmt"
	"os"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

func main() {
	passiveOpenMP()
	root := newRootCmd()
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "tsd:", err)
		os.Exit(1)
	}
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "tsd",
		Short: "Tree-search distillation: MCTS actors, a PPO-family learner, a raft coordinator",
		Long: `tsd makes a language model reason better by distilling what Monte-Carlo tree search
finds back into the model. Every flag can also be set by environment variable: --some-flag is
TSD_SOME_FLAG. A flag given on the command line wins over the environment.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return flagsFromEnv(cmd, os.LookupEnv)
		},
	}
	root.AddCommand(
		newDoctorCmd(),
		newCountdownCmd(),
		newTokenizeCmd(),
		newInitTokenizerCmd(),
		newInitModelCmd(),
		newLMCmd(),
		newBenchCmd(),
		newCoordinatorCmd(),
		newClusterCmd(),
		newMctsCmd(),
		newLearnerCmd(),
		newActorCmd(),
		newStatusCmd(),
		newLocalCmd(),
		newSFTCmd(),
		newEvalCmd(),
		newDemoCmd(),
		newHealthCmd(),
	)
	return root
}

// passiveOpenMP re-executes the binary with OMP_WAIT_POLICY=PASSIVE unless the variable is set.
// libtorch's OpenMP threads otherwise spin between parallel regions, which starves the Go runtime
// and every other tsd process on the same cores (measured: 2-thread batch-8 decoding 1.3k → 5.5k
// tokens/s). libgomp reads the variable when it loads, before main, hence the exec.
func passiveOpenMP() {
	if _, set := os.LookupEnv("OMP_WAIT_POLICY"); set {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		return
	}
	env := append(os.Environ(), "OMP_WAIT_POLICY=PASSIVE")
	_ = syscall.Exec(exe, os.Args, env) // returns only on failure; then run as we are
}

// envName maps a flag name to its environment variable: --max-new-tokens is TSD_MAX_NEW_TOKENS.
func envName(flag string) string {
	return "TSD_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// flagsFromEnv sets every flag of cmd that the command line left unset from its TSD_ variable, so
// compose files and Kubernetes manifests configure the same binary by environment (12-factor).
func flagsFromEnv(cmd *cobra.Command, lookup func(string) (string, bool)) error {
	var errs []string
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			return
		}
		v, ok := lookup(envName(f.Name))
		if !ok {
			return
		}
		if err := cmd.Flags().Set(f.Name, v); err != nil {
			errs = append(errs, fmt.Sprintf("%s=%q: %v", envName(f.Name), v, err))
		}
	})
	if len(errs) > 0 {
		return fmt.Errorf("bad environment: %s", strings.Join(errs, "; "))
	}
	return nil
}
