// Package coordinator is the raft-replicated record of a training run: the run's config hash, the
// learner lease with its fencing epoch, every published policy version, and the actors' leases.
// Three nodes tolerate the loss of one; one node serves development (`tsd local`).
//
// # Pieces
//
//   - State holds the records and their rules; FSM applies raft log entries to it. Apply is
//     deterministic: it reads time only from the entry, which the leader stamped, so every node
//     reaches the same State. Snapshot and Restore move the whole State as JSON.
//   - Node wraps hashicorp/raft around the FSM: bootstrap, join, writes with a timeout, and
//     leadership. Writes must run on the leader; a follower answers ErrNotLeader.
//   - GRPCServer serves tsd.v1.Coordinator from a Node and forwards a follower's writes to the
//     leader, so clients may call any node. toStatus maps every error to one gRPC code.
//   - Client calls a cluster through any of its nodes and retries Unavailable across them.
//   - Service is a whole coordinator process: storage on disk, node, gRPC server, health.
//
// # Rules
//
//  1. The first learner records the run config; a learner with another config hash is refused
//     (ErrConfigMismatch).
//  2. A learner lease is granted when nobody else holds a live one (else ErrLeaseHeld). Every
//     grant, also to the same learner id, increments the epoch, so a restarted learner fences its
//     own earlier process.
//  3. PublishVersion needs the current epoch (else ErrFenced), a live lease (else
//     ErrLeaseExpired) and version = latest+1 with a non-decreasing step (else ErrVersionOrder).
//     Re-publishing a committed version with the same digest succeeds, so a lost answer can be
//     retried.
//  4. Actors hold leases renewed by Heartbeat; an expired actor is dropped and must register
//     again (ErrUnknownActor). WeightSource lists live peers holding the version, the least
//     charged first, then the learner.
//
// # Consistency
//
// Writes are linearizable: they commit through the raft log on the leader. Reads (GetVersion,
// ClusterState, WatchVersions) come from the answering node's state machine, so on a follower they
// may lag the leader by the replication delay, but never go backwards. WatchVersions ends with
// Unavailable when its node loses the leader, and Client.WatchVersions resumes on another node
// after the last version it delivered, so a watcher sees every version once and in order.
//
// # Running a node
//
//  1. Build a Config (DefaultConfig, then ids, addresses, DataDir, Bootstrap or Join).
//  2. Start it: Start opens DataDir, starts raft and the gRPC server, and joins if asked.
//  3. Register the registry it was given on an HTTP /metrics endpoint (rpc.ServeMetrics).
//  4. On shutdown call Close; a restarted node recovers from DataDir and needs neither bootstrap
//     nor join.
package coordinator
