package countdown

import (
	"strconv"
	"strings"
)

// SystemPrompt is the full instruction for an instruct model such as Qwen2.5; the caller renders
// it and UserPrompt as ChatML system and user turns.
const SystemPrompt = `You are solving a Countdown puzzle. Write an arithmetic expression that equals the target, ` +
	`using some or all of the given numbers, each at most once, with +, -, *, / and parentheses. ` +
	`Division does not have to come out even: the expression is evaluated exactly. ` +
	`Work in short steps, one operation per step, each inside <step></step>, such as <step>5+9=14</step>. ` +
	`Then give the final expression, written with the given numbers only, inside exactly one ` +
	`<answer></answer>, such as <answer>(5+9)*2</answer>.`

// CompactSystemPrompt says the same in few bytes, for a tiny byte-level model where every
// character is a token. Pair it with CompactUserPrompt, or drop the system turn altogether for a
// model warmed up on WorkedSolution completions.
const CompactSystemPrompt = `Reach the target with + - * / and ( ), using each number at most once. ` +
	`Steps like <step>5+9=14</step>, then <answer>(5+9)*2</answer>.`

// UserPrompt states p for SystemPrompt: "Numbers: 5, 13, 5, 9\nTarget: 31".
func UserPrompt(p Problem) string {
	return "Numbers: " + joinInts(p.Input, ", ") + "\nTarget: " + strconv.Itoa(p.Target)
}

// CompactUserPrompt states p in few bytes: "5 13 5 9 -> 31".
func CompactUserPrompt(p Problem) string {
	return joinInts(p.Input, " ") + " -> " + strconv.Itoa(p.Target)
}

func joinInts(xs []int, sep string) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, sep)
}
