// Package rolloutlog is the learner's write-ahead buffer: a durable, append-only log of
// *tsdv1.Rollout. The learner acknowledges a rollout only once Append has returned, so that
// a crash of the actor or the learner neither loses an acknowledged rollout nor trains on one
// twice.
//
// # On disk
//
// A log is a directory of segment files, each named by the index of its first record
// (00000000000000000001.seg, …); indices are global, start at 1 and have no gaps. A record is
//
//	[u32 length][u32 CRC-32C of the payload][payload = proto-encoded tsdv1.Rollout]
//
// little-endian. A segment is closed once the next record would take it past
// Options.SegmentBytes. Beside the segments lie LOCK (held with flock while the log is open) and,
// once TruncateBefore has run, actors: the per-actor highest seq and the first index kept, written
// atomically (temp file, fsync, rename, fsync of the directory).
//
// # Recovery
//
// Open scans every segment and rebuilds the index. A crash mid-write can only damage the end of
// the last segment, so a bad record there (partial header, payload past the end of the file, zero
// length, checksum mismatch) is a torn tail: the file is cut before it and a warning is logged.
// Anything else is reported as ErrCorrupt naming the file and offset, and nothing is dropped: a
// bad record in an earlier segment, a bad record in the last segment that valid records follow,
// a record whose checksum holds but whose payload is not a valid rollout, a gap between segments.
// Acknowledged data is never cut silently; a person decides what to do with a corrupt log.
//
// # Deduplication
//
// An actor numbers its rollouts 1, 2, 3, … and sends them in order on one stream. The log keeps,
// per actor, the highest seq it holds; an Append whose seq is not above it is a duplicate, is not
// written, and returns once the original is durable. The highest seqs survive TruncateBefore and
// restarts through the actors file. Seqs may skip (the learner may reject a rollout before it gets
// here) but must not go back: a seq below the highest is a duplicate even if it never arrived.
//
// # The caller's duties
//
//  1. Open the log once per directory (a second Open, in any process, fails with ErrLocked).
//  2. Append each actor's rollouts in seq order; ack the actor only after Append returned nil. A
//     canceled context leaves the outcome unknown: the actor's retry will be recognised. To keep
//     several of one actor's rollouts in flight, Submit them in order from the stream's receive
//     loop and ack as their results arrive, in the same order.
//  3. Train from Read(next, n), starting at the index the last checkpoint stored, and Wait for more.
//  4. After a checkpoint covering every index below i is durable, call TruncateBefore(i).
//  5. Close the log. After ErrFailed (a write or fsync failed) nothing more is appended: close
//     and reopen it, which recovers whatever reached the disk.
package rolloutlog
