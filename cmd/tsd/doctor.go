package main

import (
	"encoding/json"
	"fmt"
	"runtime"

	"github.com/spf13/cobra"

	"tsd/tensor"
)

func newDoctorCmd() *cobra.Command {
	var asJSON bool
	var threads int
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Print what libtorch this binary runs on: version, CUDA devices, threads, stubbed ops",
		Args:  cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			if err := tensor.SetThreads(threads); err != nil {
				return err
			}
			info := tensor.ReadInfo()
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(info)
			}
			fmt.Fprintf(out, "libtorch:     %s\n", info.Version)
			fmt.Fprintf(out, "cuda:         %t (%d devices, cudnn %t)\n", info.CUDA, info.CUDADevices, info.CuDNN)
			fmt.Fprintf(out, "build:        %s\n", buildKind(info))
			fmt.Fprintf(out, "threads:      %d (openblas %d)\n", info.Threads, info.OpenBLASThread)
			fmt.Fprintf(out, "stubbed ops:  %d\n", info.StubbedOps)
			fmt.Fprintf(out, "go:           %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			fmt.Fprintf(out, "\n%s\n", info.Parallel)
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.Flags().IntVar(&threads, "threads", tensor.ThreadsFromEnv(runtime.NumCPU()), "libtorch threads")
	return cmd
}

// buildKind says whether this binary links libtorch's CUDA libraries and which cuDNN it loaded.
func buildKind(info tensor.Info) string {
	if !info.CUDABuild {
		return "cpu"
	}
	switch info.CuDNNVersion {
	case -1:
		return "cuda (no cuDNN loaded)"
	case 0:
		return "cuda (cuDNN stand-in: cuDNN ops fail; docs/deploy.md)"
	}
	return fmt.Sprintf("cuda (cuDNN %d)", info.CuDNNVersion)
}
