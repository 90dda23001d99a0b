package tensor

import (
	"context"
	"errors"
	"runtime"
)

// Worker runs functions on one goroutine locked to its OS thread. libtorch keeps grad mode and the
// last error per thread, so all tensor work of a model goes through one Worker; any goroutine may
// call Do.
type Worker struct {
	jobs chan func()
	done chan struct{}
}

// ErrWorkerClosed is returned by Do after Close.
var ErrWorkerClosed = errors.New("tensor: worker closed")

// NewWorker starts a worker.
func NewWorker() *Worker {
	w := &Worker{jobs: make(chan func()), done: make(chan struct{})}
	go w.loop()
	return w
}

func (w *Worker) loop() {
	runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
	for {
		select {
		case f := <-w.jobs:
			f()
		case <-w.done:
			return
		}
	}
}

// Do runs f on the worker's thread and returns its error. It waits for f to finish even if ctx is
// cancelled once f has started (a half-done tensor operation cannot be abandoned).
func (w *Worker) Do(ctx context.Context, f func() error) error {
	result := make(chan error, 1)
	job := func() { result <- f() }
	select {
	case w.jobs <- job:
	case <-ctx.Done():
		return ctx.Err()
	case <-w.done:
		return ErrWorkerClosed
	}
	return <-result
}

// Close stops the worker once the running function (if any) returns.
func (w *Worker) Close() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
}

// OnWorker runs f on a worker of its own and stops the worker when f returns: for a whole command
// or test whose body is tensor work, instead of locking the caller's goroutine to its thread.
func OnWorker(f func() error) error {
	w := NewWorker()
	defer w.Close()
	return w.Do(context.Background(), f)
}
