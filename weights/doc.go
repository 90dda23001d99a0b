// Package weights moves policy checkpoints between the learner and the actors.
//
// A checkpoint is a flat directory in Hugging Face layout (config.json, model.safetensors,
// tokenizer.json, ...). It is named by a version number, which the learner assigns, and by a
// content digest, which anyone can recompute: the sha256 of the lines "<name> <size> <blake3>\n"
// for every file in byte-wise name order, each file named by its BLAKE3 (see Digest). The
// coordinator records the digest when the learner publishes a version, so a fetcher can check what
// any peer sends against it.
//
// The pieces:
//
//   - Manifest hashes a checkpoint directory, streaming, and ValidateManifest checks a manifest
//     that arrived from elsewhere (file names that cannot escape a directory, sorted, unique,
//     digest consistent).
//   - Store keeps immutable versions on disk, each visible only once complete. Holding a version
//     (Acquire) keeps Keep from deleting it.
//   - Server serves a Store over the tsdv1.Weights service: the manifest, then every file in
//     manifest order as chunks carrying their own CRC-32C. A request may resume at a file and
//     offset.
//   - Fetch downloads a version from a list of sources into a Store, checking each chunk as it
//     arrives (CRC-32C, against corruption in transit), each file when it ends (BLAKE3, against
//     the manifest) and the manifest against the coordinator's digest. A corrupt chunk or a
//     broken stream resumes where it stopped; a source that keeps failing is abandoned for the
//     next one.
//
// Relaying needs nothing more: an actor runs a Server over the Store it fetched into, and the
// coordinator lists it as a source for the next actor, so the learner sends each version once
// however many actors there are.
//
// A fetcher's duties, in order:
//
//  1. Learn (version, sha256, size) from the coordinator and the addresses that hold it.
//  2. Call Fetch with those sources, peers first and the learner last; set MaxBytes to the
//     recorded size.
//  3. Acquire the version, load the model from Handle.Dir, swap it in between searches, and
//     Release the previous version's handle.
//  4. Call Keep now and then to bound the disk used; held versions survive it.
//
// Dial and serve with DialOptions and ServerOptions: the defaults of grpc-go cap a received
// message at 4 MiB (smaller than a maximal chunk plus its header) and start with 64 KiB flow
// control windows, which starve a bulk stream.
package weights
