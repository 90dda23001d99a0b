#!/usr/bin/env bash
# Same seed, same results: runs two tsd binaries (e.g. main's and a refactor's) on the same tiny
# model and problems with fixed seeds and compares what they print, wall times left out:
# `tsd mcts --json` and its exported tree in both prompt styles, `tsd eval` sampling and
# `tsd eval --search` (one tree at a time: concurrent trees share batches, which depend on timing)
# with every completion kept. Prints "identical" per case and exits 1 if any differs.
#
#   bench/same-results.sh OLD_TSD NEW_TSD
set -euo pipefail
old=$1 new=$2
d=$(mktemp -d)
trap 'rm -rf "$d"' EXIT
"$old" init-model --preset tiny --out "$d/tiny" >/dev/null 2>&1
"$old" countdown gen --preset easy --n 6 --out "$d/p.jsonl" >/dev/null 2>&1
strip() { # drop timings (…_ns, seconds, tokens_per_s) from JSON lines
	python3 -c 'import json, sys
def f(x):
    if isinstance(x, dict): return {k: f(v) for k, v in x.items() if not k.endswith("_ns") and k not in ("seconds", "tokens_per_s")}
    if isinstance(x, list): return [f(v) for v in x]
    return x
for line in sys.stdin: print(json.dumps(f(json.loads(line)), sort_keys=True))'
}
for v in old new; do
	b=${!v}
	for st in compact full; do
		"$b" mcts --model "$d/tiny" --problem '{"input":[3,5,7],"target":22}' --prompt-style $st --workers 4 --iterations 4 \
			--step-max-tokens 12 --search-max-new-tokens 48 --search-seed 7 --threads 1 --json \
			--export "$d/$v-tree-$st.json" 2>/dev/null | strip >"$d/$v-mcts-$st.json"
	done
	"$b" eval --model "$d/tiny" --data "$d/p.jsonl" --k 3 --temperature 0.9 --max-new-tokens 40 --batch 4 --seed 5 \
		--prompt-style compact --threads 1 --keep-completions --out "$d/$v-eval.jsonl" >/dev/null 2>&1
	"$b" eval --model "$d/tiny" --data "$d/p.jsonl" --limit 3 --k 2 --search --workers 2 --iterations 3 --step-max-tokens 10 \
		--search-max-new-tokens 40 --batch 1 --seed 5 --prompt-style compact --threads 1 --keep-completions \
		--out "$d/$v-search.jsonl" >/dev/null 2>&1
	for f in eval search; do strip <"$d/$v-$f.jsonl" >"$d/$v-$f.norm"; done
done
rc=0
for c in mcts-compact.json mcts-full.json tree-compact.json tree-full.json eval.norm search.norm; do
	if cmp -s "$d/old-$c" "$d/new-$c"; then
		echo "$c identical ($(wc -c <"$d/new-$c") bytes)"
	else
		echo "$c DIFFERS"
		diff "$d/old-$c" "$d/new-$c" | head -5 || true
		rc=1
	fi
done
exit $rc
