// Package torch owns process-wide libtorch settings (threads, seeds) and reports what libtorch this
// binary runs on. Everything else that touches tensors uses gotch's ts package directly.
package torch

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>

// OpenBLAS keeps its own thread pool and ignores torch's setting; its setter is looked up at run time
// so the binary also runs where libtorch uses another BLAS (MKL in official builds).
static int tsd_openblas_set_threads(int n) {
	void (*set)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "openblas_set_num_threads");
	if (set == NULL) return 0;
	set(n);
	return 1;
}
static int tsd_openblas_get_threads(void) {
	int (*get)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "openblas_get_num_threads");
	return get == NULL ? 0 : get();
}
*/
import "C"

import (
	"fmt"
	"os"
	"strings"

	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// SetThreads sets libtorch's intra-op threads and, when libtorch uses OpenBLAS, OpenBLAS's threads
// too, so matmuls and elementwise ops agree on how many cores they use.
func SetThreads(n int) error {
	if n < 1 {
		return fmt.Errorf("torch: thread count %d < 1", n)
	}
	if err := ts.SetNumThreads(n); err != nil {
		return fmt.Errorf("torch: set threads: %w", err)
	}
	C.tsd_openblas_set_threads(C.int(n))
	return nil
}

// Seed seeds libtorch's default generators (CPU and CUDA).
func Seed(seed int64) { ts.ManualSeed(seed) }

// Info describes the libtorch runtime; every value is read from libtorch itself.
type Info struct {
	Version        string `json:"libtorch_version"`
	CUDA           bool   `json:"cuda_available"`
	CUDADevices    int    `json:"cuda_devices"`
	CuDNN          bool   `json:"cudnn_available"`
	Threads        int    `json:"threads"`
	OpenBLASThread int    `json:"openblas_threads"` // 0: libtorch does not use OpenBLAS
	StubbedOps     int    `json:"stubbed_ops"`
	Parallel       string `json:"parallel_info"`
}

// ReadInfo asks libtorch about itself. stubbed is the number of generated ops the compat step
// replaced (they return an error when called).
func ReadInfo() Info {
	return Info{
		Version:        ts.TorchVersion(),
		CUDA:           libtch.AtcCudaIsAvailable(),
		CUDADevices:    int(libtch.AtcCudaDeviceCount()),
		CuDNN:          libtch.AtcCudnnIsAvailable(),
		Threads:        ts.NumThreads(),
		OpenBLASThread: int(C.tsd_openblas_get_threads()),
		StubbedOps:     len(StubbedOps()),
		Parallel:       strings.TrimSpace(ts.ParallelInfo()),
	}
}

// ThreadsFromEnv returns the thread count users asked for with OMP_NUM_THREADS, or def.
func ThreadsFromEnv(def int) int {
	var n int
	if _, err := fmt.Sscan(os.Getenv("OMP_NUM_THREADS"), &n); err == nil && n > 0 {
		return n
	}
	return def
}

// StubbedOps lists the libtorch ops this build lacks (see deploy/gotch); calling one returns an error.
func StubbedOps() []string { return libtch.StubbedOps }
