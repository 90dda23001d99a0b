// Package actor produces rollouts: it runs the tree search (or, for the baselines, plain sampling)
// with the newest policy it holds and streams the results to the learner.
//
// An actor's duties, in order:
//
//  1. Register with the coordinator (a lease), and learn the learner's address and the newest
//     policy version.
//  2. Load that version (fetched by content hash from peers or the learner, verified) or, before
//     the first publish, the initial model.
//  3. Heartbeat every third of the lease, reporting the version it holds so the coordinator can
//     point new actors at it; re-register if the lease lapsed.
//  4. Watch for new versions; fetch each into the local store in the background; swap the newest
//     in between waves, so every search runs on one version, which its rollout records.
//  5. Work on problems in waves (the source: 12 trees in flight), batching the model calls of all
//     trees through one mcts.Batcher, and hand each rollout to the rolloutstream.Sender.
//  6. The Sender streams rollouts under the learner's credits and keeps each until acked; after a
//     reconnect the learner's Hello reply says what is durable and the rest is sent again.
package actor
