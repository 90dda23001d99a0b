package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"tsd/model"
)

func newBenchCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure the model on this machine (bench/model.sh compares with PyTorch)"}
	cmd.AddCommand(newBenchDecodeCmd(), newBenchTrainCmd())
	return cmd
}

// benchIDs is the synthetic batch both tsd and bench/decode.py use: id (7·row + 13·col) mod V.
func benchIDs(batch, length, vocab int) [][]int32 {
	ids := make([][]int32, batch)
	for r := range ids {
		ids[r] = make([]int32, length)
		for c := range ids[r] {
			ids[r][c] = int32((7*r + 13*c) % vocab)
		}
	}
	return ids
}

func newBenchDecodeCmd() *cobra.Command {
	var mf modelFlags
	var batch, prompt, newTok, repeat int
	cmd := &cobra.Command{
		Use:   "decode",
		Short: "Greedy KV-cache decoding: prefill a prompt, then one token at a time; prints tokens/s",
		Args:  cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			m, _, err := mf.open(cmd, false)
			if err != nil {
				return err
			}
			defer m.Close()
			ids := benchIDs(batch, prompt, m.Config().VocabSize)
			best := 0.0
			for i := 0; i < repeat; i++ {
				start := time.Now()
				c, err := m.Prefill(ids)
				if err != nil {
					return err
				}
				_, err = m.Generate(c, model.SampleOptions{MaxNewTokens: newTok}, nil)
				c.Close()
				if err != nil {
					return err
				}
				best = max(best, float64(batch*newTok)/time.Since(start).Seconds())
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
				"impl": "tsd-go", "batch": batch, "tokens_per_s": round1(best)})
		}),
	}
	mf.register(cmd)
	cmd.Flags().IntVar(&batch, "batch", 1, "sequences decoded together")
	cmd.Flags().IntVar(&prompt, "prompt", 32, "prompt tokens")
	cmd.Flags().IntVar(&newTok, "new", 128, "new tokens per sequence")
	cmd.Flags().IntVar(&repeat, "repeat", 3, "runs; the best is reported")
	return cmd
}

func newBenchTrainCmd() *cobra.Command {
	var mf modelFlags
	var batch, seq, repeat int
	cmd := &cobra.Command{
		Use:   "train",
		Short: "Forward + backward over a batch (log-probs, values, entropy); prints tokens/s and step time",
		Args:  cobra.NoArgs,
		RunE: onWorker(func(cmd *cobra.Command, _ []string) error {
			m, _, err := mf.open(cmd, true)
			if err != nil {
				return err
			}
			defer m.Close()
			ids := benchIDs(batch, seq, m.Config().VocabSize)
			best := time.Duration(1<<63 - 1)
			for i := 0; i < repeat; i++ {
				start := time.Now()
				if err := trainStep(m, ids); err != nil {
					return err
				}
				best = min(best, time.Since(start))
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(map[string]any{
				"impl": "tsd-go", "batch": batch, "seq": seq, "step_s": round3(best.Seconds()),
				"tokens_per_s": round1(float64(batch*seq) / best.Seconds())})
		}),
	}
	mf.register(cmd)
	cmd.Flags().IntVar(&batch, "batch", 8, "sequences per step")
	cmd.Flags().IntVar(&seq, "seq", 160, "tokens per sequence")
	cmd.Flags().IntVar(&repeat, "repeat", 3, "steps; the fastest is reported")
	return cmd
}

// trainStep runs forward and backward of mean(log-probs) + mean(values) (entropy computed too).
func trainStep(m *model.Qwen2, ids [][]int32) error {
	s, err := m.Score(ids, model.ScoreOptions{Entropy: true})
	if err != nil {
		return err
	}
	defer s.Close()
	sum, err := s.LogProbs.Mean(gotch.Float, false)
	if err != nil {
		return err
	}
	v, err := s.Values.Mean(gotch.Float, false)
	if err != nil {
		return err
	}
	loss, err := sum.Add(v, true)
	v.MustDrop()
	if err != nil {
		return err
	}
	defer loss.MustDrop()
	if err := loss.Backward(); err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	return nil
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }
