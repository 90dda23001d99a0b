// Package countdown is the Countdown arithmetic game as a reinforcement-learning environment: problem
// sets, a seeded generator, an exact solver, the prompts, the verifier and the rewards.
//
// A problem is a multiset of non-negative integers and a positive target. A solution is an
// expression over some of the numbers (each used at most once, not all needed) with + - * / and
// parentheses whose exact rational value equals the target; 8 / (3 - 8 / 3) reaches 24 although
// no integer division gets there, so nothing here ever rounds.
//
// The model answers in steps and one final expression:
//
//	<step>5+9=14</step><step>14*2=28</step><answer>(5+9)*2</answer>
//
// Only the last <answer>…</answer> is graded (the same pair a non-greedy regular expression
// <answer>(.*?)</answer> finds last). The steps are free text for the model's own use.
//
// Rewards (the source's): DenseReward trains — no answer −1, an invalid answer (does not parse,
// uses numbers outside the input multiset, divides by zero) −0.9, otherwise
// 1 − 2·min(|target − value| / target, 1). SparseReward evaluates — 1 only for exactly the target.
//
// Two arithmetics are kept apart on purpose: the verifier evaluates with math/big (any input,
// bounded work because an answer holds at most len(Input) literals), the solver and generator with
// overflow-checked int64 fractions (fast, exhaustive). Tests check each against the other.
package countdown
