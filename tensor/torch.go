package tensor

// Process-wide libtorch settings (threads, seeds) and what libtorch this binary runs on.

/*
#cgo LDFLAGS: -ldl
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <link.h>
#include <stddef.h>
#include <string.h>

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

// The cuDNN library actually loaded (cudnnGetVersion, e.g. 90100), -1 when none is, 0 for the
// stand-in of tsd's CUDA image (deploy/cuda-stand-in.sh); libtorch only says it was compiled
// with cuDNN. A CUDA build is one that loaded libc10_cuda.
static long tsd_cudnn_version(void) {
	size_t (*get)(void) = (size_t (*)(void))dlsym(RTLD_DEFAULT, "cudnnGetVersion");
	return get == NULL ? -1 : (long)get();
}
static int tsd_is_c10_cuda(struct dl_phdr_info *info, size_t size, void *data) {
	return strstr(info->dlpi_name, "/libc10_cuda.so") != NULL;
}
static int tsd_cuda_build(void) { return dl_iterate_phdr(tsd_is_c10_cuda, NULL); }
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
		return fmt.Errorf("tensor: thread count %d < 1", n)
	}
	if err := ts.SetNumThreads(n); err != nil {
		return fmt.Errorf("tensor: set threads: %w", err)
	}
	C.tsd_openblas_set_threads(C.int(n))
	return nil
}

// Seed seeds libtorch's default generators (CPU and CUDA).
func Seed(seed int64) { ts.ManualSeed(seed) }

// Info describes the libtorch runtime; every value is read from libtorch itself.
type Info struct {
	Version        string `json:"libtorch_version"`
	CUDABuild      bool   `json:"cuda_build"` // linked against libtorch's CUDA libraries
	CUDA           bool   `json:"cuda_available"`
	CUDADevices    int    `json:"cuda_devices"`
	CuDNN          bool   `json:"cudnn_available"`
	CuDNNVersion   int    `json:"cudnn_version"` // of the library loaded: -1 none, 0 the image's stand-in
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
		CUDABuild:      C.tsd_cuda_build() == 1,
		CUDA:           libtch.AtcCudaIsAvailable(),
		CUDADevices:    int(libtch.AtcCudaDeviceCount()),
		CuDNN:          libtch.AtcCudnnIsAvailable(),
		CuDNNVersion:   int(C.tsd_cudnn_version()),
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
