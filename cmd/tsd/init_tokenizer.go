package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"tsd/tokenizer"
)

func newInitTokenizerCmd() *cobra.Command {
	var out, corpus string
	cfg := tokenizer.DefaultTinyConfig()
	cmd := &cobra.Command{
		Use:   "init-tokenizer",
		Short: "Write the small byte-level vocabulary for tiny models",
		Long: `init-tokenizer writes tokenizer.json and tokenizer_config.json for tiny models: the 256
byte symbols (any text encodes; digits stay one token each), merges learned from a Countdown
chat corpus (built in, or --corpus), and the ChatML and <step>/<answer> markers as added
tokens. The files follow Hugging Face's format, so its libraries load them too.`,
		Example: `  tsd init-tokenizer --out models/tiny`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if corpus != "" {
				text, err := os.ReadFile(corpus)
				if err != nil {
					return fmt.Errorf("read corpus: %w", err)
				}
				cfg.Corpus = string(text)
			}
			if err := cfg.Write(out); err != nil {
				return err
			}
			tok, err := tokenizer.Load(out)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%d ids)\n", filepath.Join(out, tokenizer.FileName), tok.VocabSize())
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "directory to write tokenizer.json and tokenizer_config.json into")
	cmd.Flags().StringVar(&corpus, "corpus", "", "text file to learn the merges from (default: the built-in Countdown chats)")
	cmd.Flags().IntVar(&cfg.Merges, "merges", cfg.Merges, "how many merges to learn at most")
	_ = cmd.MarkFlagRequired("out") // cannot fail: the flag exists
	return cmd
}
