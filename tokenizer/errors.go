package tokenizer

import "errors"

// Errors returned by this package, wrapped with context; test for them with errors.Is.
var (
	// ErrUnsupported means the tokenizer.json asks for a feature this package does not implement
	// (the message names it). It never silently encodes differently from Hugging Face.
	ErrUnsupported = errors.New("unsupported tokenizer feature")
	// ErrBadTokenizer means the tokenizer.json is malformed or inconsistent: not JSON, a merge of
	// tokens that are not in the vocabulary, one id given to two tokens, and the like.
	ErrBadTokenizer = errors.New("bad tokenizer")
	// ErrBadInput means a JSONL record given to EncodeJSONL or DecodeJSONL is not usable.
	ErrBadInput = errors.New("bad input")
	// ErrBadTinyConfig means a TinyConfig cannot produce a tokenizer.
	ErrBadTinyConfig = errors.New("bad tiny tokenizer config")
)
