// Package rolloutstream is the actor's end of the rollout stream to the learner: it sends under
// the learner's credits (backpressure), keeps every rollout until the learner acknowledges it as
// durable, and after a broken stream resends exactly what was not acknowledged. It is pure Go, so
// its credit and resend logic runs under the race detector.
package rolloutstream
