// Package tokenizer turns text into the token ids of Qwen2.5 (and of the project's tiny models)
// and back, giving exactly the ids of Hugging Face's tokenizers library for the same
// tokenizer.json, in pure Go.
//
// Encode follows Hugging Face's pipeline:
//
//  1. Added tokens whose "normalized" is false (Qwen's ChatML markers) are found in the raw text,
//     leftmost first and longest first there, and become their ids.
//  2. Each stretch between them is normalized (NFC) on its own; added tokens with "normalized"
//     true are then found in it the same way.
//  3. What is left is cut into pieces by Qwen's pre-tokenizer regex (a hand-written scanner:
//     the regex needs lookahead, which Go's regexp lacks).
//  4. Each piece's bytes are merged by BPE, lowest merge rank first; long pieces use a heap so a
//     100 KB "word" costs O(n log n). A bounded cache remembers the ids of recent pieces.
//
// Decode joins the bytes of the ids and replaces ill-formed UTF-8 as Rust's from_utf8_lossy does.
//
// Load refuses, with ErrUnsupported naming the feature, any tokenizer.json setting that would
// make its ids differ from Hugging Face's: other models, normalizers, pre-tokenizers,
// post-processors that add tokens, truncation and padding.
//
// A *BPE is safe for concurrent use. ChatML renders conversations as Qwen2.5's chat template
// does; WriteTiny (and TinyConfig.Write) writes the small vocabulary the tiny models use.
package tokenizer
