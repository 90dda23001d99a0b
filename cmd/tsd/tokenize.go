package main

import (
	"github.com/spf13/cobra"

	"tsd/tokenizer"
)

func newTokenizeCmd() *cobra.Command {
	var path string
	var decode bool
	cmd := &cobra.Command{
		Use:   "tokenize",
		Short: "Encode JSONL text to token ids, or decode ids to text",
		Long: `tokenize reads JSONL on stdin and writes JSONL on stdout, one line per input line, in order.
Encoding reads {"text": "..."} and writes {"ids": [...]}, matching Hugging Face's tokenizers
(special tokens written in the text, such as <|im_end|>, become their ids). With --decode it reads
{"ids": [...]} and writes {"text": "..."}.`,
		Example: `  echo '{"text": "Hello world"}' | tsd tokenize --tokenizer models/qwen2.5-1.5b
  echo '{"ids": [9707, 1879]}' | tsd tokenize --tokenizer models/qwen2.5-1.5b --decode`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			tok, err := tokenizer.Load(path)
			if err != nil {
				return err
			}
			if decode {
				return tok.DecodeJSONL(cmd.InOrStdin(), cmd.OutOrStdout())
			}
			return tok.EncodeJSONL(cmd.InOrStdin(), cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&path, "tokenizer", "", "tokenizer.json, or the model directory that holds it")
	cmd.Flags().BoolVar(&decode, "decode", false, "read {\"ids\": [...]} and write {\"text\": \"...\"}")
	_ = cmd.MarkFlagRequired("tokenizer") // cannot fail: the flag exists
	return cmd
}
