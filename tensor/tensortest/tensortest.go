// Package tensortest is what tests of tensor code share. Code under test runs its tensor work on a
// tensor.Worker; a test that makes or inspects tensors itself does so on its own goroutine, locked
// here, instead of each test package keeping its own copy of the locking.
package tensortest

import (
	"runtime"
	"testing"

	"github.com/sugarme/gotch/ts"
)

// LockThread locks the test's goroutine to its OS thread until the test ends, with autograd on (an
// earlier test on the same thread may have left it off).
func LockThread(tb testing.TB) {
	tb.Helper()
	runtime.LockOSThread()
	tb.Cleanup(runtime.UnlockOSThread)
	if _, err := ts.GradSetEnabled(true); err != nil {
		tb.Fatal(err)
	}
}
