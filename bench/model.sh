#!/usr/bin/env bash
# Greedy KV-cache decoding, tsd (Go) vs PyTorch eager, on the same libtorch (Debian's 1.13), the same
# model and the same work, runs interleaved so both see the same machine. Prints a Markdown table.
#
#   [ROUNDS=3] bench/model.sh [MODEL_DIR] [THREADS]     (default: a fresh tiny model, all cores)
set -euo pipefail
# Both sides get the same threading environment: OpenMP threads that sleep between regions (tsd
# sets this for itself) and as many OpenBLAS threads as libtorch threads.
export OMP_WAIT_POLICY=PASSIVE
cd "$(dirname "$0")/.."
make -s build
dir=${1:-runs/bench-tiny}
threads=${2:-$(nproc)}
[ -f "$dir/config.json" ] || bin/tsd init-model --preset tiny --out "$dir" >/dev/null
# -I: from the repository root, plain `import torch` would find our Go package torch/.
if ! /usr/bin/python3 -I -c 'import torch' 2>/dev/null; then
	s=""; [ "$(id -u)" = 0 ] || s=sudo
	$s apt-get update -qq && $s apt-get install -y -qq python3-torch >/dev/null
fi
field() { sed -n "s/.*\"$1\": *\([0-9.]*\).*/\1/p"; }
best() { echo "$1 $2" | awk '{print ($2>$1)?$2:$1}'; }
# One timed run of the PyTorch baseline at this batch; extra arguments go to decode.py.
python_decode() {
	OMP_NUM_THREADS=$threads OPENBLAS_NUM_THREADS=$threads /usr/bin/python3 bench/decode.py "$dir" \
		--threads "$threads" --batch "$batch" --repeat 1 "$@" | field tokens_per_s
}
echo "| batch | tsd (Go) tokens/s | PyTorch eager tokens/s | Go / Python | PyTorch eager, argmax only |"
echo "|---|---|---|---|---|"
for batch in 1 8; do
	go=0 py=0 bare=0
	for _ in $(seq "${ROUNDS:-3}"); do # interleave, keep each side's best
		# Plain assignments, so that a failed run stops the script (set -e, pipefail).
		g=$(bin/tsd bench decode --model "$dir" --threads "$threads" --batch "$batch" --repeat 1 | field tokens_per_s)
		p=$(python_decode)
		b=$(python_decode --bare)
		go=$(best "$go" "$g") py=$(best "$py" "$p") bare=$(best "$bare" "$b")
	done
	echo "| $batch | $go | $py | $(echo "$go $py" | awk '{printf "%.2f×", $1/$2}') | $bare |"
done
