package tokenizer

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"testing"
	"time"
)

// countdownChats returns Countdown-style ChatML conversations (system prompt, problem, stepwise
// answer) of at least minBytes in all, from a seeded RNG.
func countdownChats(minBytes int) []string {
	const system = "You solve arithmetic puzzles. Combine the given numbers with +, -, * and / " +
		"(each number at most once) to reach the target. Think in short steps, each inside " +
		"<step>...</step>, then give the final expression inside <answer>...</answer>."
	rng := rand.New(rand.NewPCG(7, 11))
	ops := []string{"+", "-", "*", "/"}
	var chats []string
	for total := 0; total < minBytes; {
		nums := []int{1 + rng.IntN(13), 1 + rng.IntN(13), 1 + rng.IntN(13), 1 + rng.IntN(13)}
		target := 1 + rng.IntN(100)
		var steps strings.Builder
		acc := nums[0]
		for _, n := range nums[1:] {
			op := ops[rng.IntN(len(ops))]
			fmt.Fprintf(&steps, "<step>%d %s %d = %d</step>\n", acc, op, n, acc+n)
			acc += n
		}
		chat := ChatML([]Message{
			{Role: "system", Content: system},
			{Role: "user", Content: fmt.Sprintf("Using the numbers %v, create an equation that equals %d.", nums, target)},
			{Role: "assistant", Content: fmt.Sprintf("%s<answer>(%d + %d) * %d - %d</answer>", steps.String(), nums[0], nums[1], nums[2], nums[3])},
		}, false)
		chats = append(chats, chat)
		total += len(chat)
	}
	return chats
}

// BenchmarkEncodeChatML measures single-goroutine encode throughput on 1 MB of Countdown ChatML,
// with the word cache warm (steady state) and emptied before every pass (cold).
func BenchmarkEncodeChatML(b *testing.B) {
	tok := qwen(b)
	chats := countdownChats(1 << 20)
	size, tokens := 0, 0
	for _, c := range chats {
		size += len(c)
		tokens += len(tok.Encode(c))
	}
	for _, cold := range []bool{false, true} {
		b.Run(map[bool]string{false: "warm", true: "cold"}[cold], func(b *testing.B) {
			b.SetBytes(int64(size))
			start := cpuTime()
			for b.Loop() {
				if cold {
					tok.cache = newWordCache()
				}
				for _, c := range chats {
					tok.Encode(c)
				}
			}
			b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
			b.ReportMetric(float64(tokens)*float64(b.N)/(cpuTime()-start).Seconds(), "tokens/cpu-s")
		})
	}
}

// BenchmarkEncodeBatch is BenchmarkEncodeChatML/warm spread over all CPUs.
func BenchmarkEncodeBatch(b *testing.B) {
	tok := qwen(b)
	chats := countdownChats(1 << 20)
	tokens := 0
	for _, ids := range tok.EncodeBatch(chats) {
		tokens += len(ids)
	}
	start := cpuTime()
	for b.Loop() {
		tok.EncodeBatch(chats)
	}
	b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(tokens)*float64(b.N)/(cpuTime()-start).Seconds(), "tokens/cpu-s")
}

// BenchmarkLongWord shows that one huge pre-tokenized piece costs about linear time: per-byte
// cost should stay flat as the size doubles.
func BenchmarkLongWord(b *testing.B) {
	tok := qwen(b)
	for _, tc := range []struct {
		name string
		unit string
	}{{"letter", "a"}, {"punct", "!?."}, {"mixed", "ab"}} {
		for _, kb := range []int{25, 50, 100, 200} {
			text := strings.Repeat(tc.unit, kb<<10/len(tc.unit))
			b.Run(fmt.Sprintf("%s/%dKB", tc.name, kb), func(b *testing.B) {
				b.SetBytes(int64(len(text)))
				start := cpuTime()
				for b.Loop() {
					tok.Encode(text)
				}
				b.ReportMetric(float64(cpuTime()-start)/float64(b.N)/float64(len(text)), "cpu-ns/byte")
			})
		}
	}
}

// BenchmarkLoad reports wall time and, as cpu-ns/op, the CPU time the process spent (which a
// busy shared machine does not inflate).
func BenchmarkLoad(b *testing.B) {
	start := cpuTime()
	for b.Loop() {
		if _, err := Load(qwenDir); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, start)
}

// cpuTime is the user and system time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func BenchmarkDecode(b *testing.B) {
	tok := qwen(b)
	ids := tok.EncodeBatch(countdownChats(1 << 20))
	tokens := 0
	for _, x := range ids {
		tokens += len(x)
	}
	for b.Loop() {
		for _, x := range ids {
			tok.Decode(x)
		}
	}
	b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
}

// BenchmarkEncodeDiverse encodes the 4,061 fixture strings (many scripts, emoji, odd spacing)
// with the word cache emptied before every pass: a floor for text that rarely repeats.
func BenchmarkEncodeDiverse(b *testing.B) {
	tok := qwen(b)
	var texts []string
	size, tokens := 0, 0
	for _, file := range []string{"golden.jsonl", "fuzz.jsonl"} {
		for _, c := range readFixture(b, qwenDir+"/"+file) {
			texts = append(texts, c.Text)
			size += len(c.Text)
			tokens += len(c.IDs)
		}
	}
	b.SetBytes(int64(size))
	start := cpuTime()
	for b.Loop() {
		tok.cache = newWordCache()
		for _, s := range texts {
			tok.Encode(s)
		}
	}
	b.ReportMetric(float64(tokens)*float64(b.N)/b.Elapsed().Seconds(), "tokens/s")
	b.ReportMetric(float64(tokens)*float64(b.N)/(cpuTime()-start).Seconds(), "tokens/cpu-s")
}
