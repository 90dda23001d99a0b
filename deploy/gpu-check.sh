#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU, a pip torch and no network: builds tsd from this
# working tree with the offline bundle (deploy/gpu-bundle.sh) against that torch, then measures
# tsd against PyTorch eager (deploy/gpu-check.py) on the same card, with Hugging Face generate
# too where transformers is installed:
#
#   tsd doctor; bf16 greedy decode tokens/s of the Qwen2.5-1.5B shape (random weights) at batch
#   1, 8, 32 and 256; a training step (forward + backward) at batch 4 x 512 tokens; the peak GPU
#   memory of each run (nvidia-smi, per process); ratios to tsd.
#
#   deploy/gpu-check.sh     # TSD_GPU_BUNDLE (default build/gpu-bundle); LIBTORCH (default: python3's
#                           # torch/ folder, else Debian's libtorch-dev); TSD_GPU_NEW (decode tokens,
#                           # default 64); TSD_GPU_BUILD_ONLY=1 stops after the build and tsd doctor
# docs/gpu.md says how to run it through the device tool.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
bundle=$(cd "${TSD_GPU_BUNDLE:-build/gpu-bundle}" && pwd)
work=${TSD_GPU_WORK:-${TMPDIR:-/tmp}/tsd-gpu-check}
new=${TSD_GPU_NEW:-64}
t0=$SECONDS

# --- build, offline ----------------------------------------------------------------------------
# unpack ARCHIVE DIR: tar's xz, or Python's where the machine has no xz.
unpack() {
	if command -v xz >/dev/null; then tar -C "$2" -xJf "$1"; else python3 -c '
import sys, tarfile
kw = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
tarfile.open(sys.argv[1]).extractall(sys.argv[2], **kw)' "$1" "$2"; fi
}
# The tree is copied to $work/src: the vendor folder and gotch's copy are made there.
mkdir -p "$work/go" "$work/gotch" "$work/src"
[ -x "$work/go/bin/go" ] || unpack "$bundle/go.tar.xz" "$work/go"
[ -d "$work/gotch/ts" ] || unpack "$bundle/gotch.tar.xz" "$work/gotch"
tar --exclude=./.git --exclude=./third_party --exclude=./bin --exclude=./build --exclude=./runs -cf - . |
	tar -C "$work/src" -xf -
rm -rf "$work/src/vendor"
unpack "$bundle/vendor.tar.xz" "$work/src"
cd "$work/src"
export PATH=$work/go/bin:$PATH GOROOT=$work/go GOTOOLCHAIN=local GOTELEMETRY=off
export GOPROXY=off GOSUMDB=off GOFLAGS="-trimpath -mod=vendor" GOCACHE=$work/gocache
export TSD_GOTCH_SRC=$work/gotch
if [ -z "${LIBTORCH:-}" ] && dir=$(python3 -c 'import os, torch; print(os.path.dirname(torch.__file__))' 2>/dev/null); then
	export LIBTORCH=$dir
fi
if [ -z "${LIBTORCH:-}" ] && ! dpkg-query -W -f='${Status}' libtorch-dev 2>/dev/null | grep -q 'ok installed'; then
	echo "gpu-check: no torch: python3 cannot import torch, LIBTORCH is not set, no Debian libtorch-dev" >&2
	exit 1
fi
echo "gpu-check: $(go version), libtorch: ${LIBTORCH:-Debian libtorch-dev}"
deploy/gotch/setup.sh
rm -rf vendor/github.com/sugarme/gotch
cp -r third_party/gotch vendor/github.com/sugarme/gotch # the copy for this libtorch
go build -o "$work/tsd" ./cmd/tsd
tsd=$work/tsd
echo "gpu-check: built in $((SECONDS - t0)) s"
"$tsd" doctor
[ "${TSD_GPU_BUILD_ONLY:-0}" = 0 ] || exit 0

# --- measurements ------------------------------------------------------------------------------
results=$work/results.jsonl
: >"$results"
model=$work/q15
[ -f "$model/config.json" ] || "$tsd" init-model --preset qwen2.5-1.5b --dtype bf16 --out "$model" >/dev/null

# used_mib [PID]: GPU memory in use by process PID, or on GPU 0 without PID; 0 when unknown.
used_mib() {
	local m
	if [ $# -eq 1 ]; then
		m=$(nvidia-smi --query-compute-apps=pid,used_memory --format=csv,noheader,nounits 2>/dev/null |
			awk -F', *' -v p="$1" '$1 == p { print $2 }' | head -1)
	else
		m=$(nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -i 0 2>/dev/null | head -1)
	fi
	case "$m" in '' | *[!0-9]*) echo 0 ;; *) echo "$m" ;; esac
}

# measure IMPL WHAT CMD...: runs CMD (which prints one JSON line), polling nvidia-smi for the peak
# memory of its process (or, where process ids are not visible, of the whole GPU above what was
# in use before); appends the result to $results. A failed run is reported and skipped.
measure() {
	local impl=$1 what=$2 out pid peak=0 total=0 base m
	shift 2
	out=$(mktemp)
	base=$(used_mib)
	"$@" >"$out" &
	pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		m=$(used_mib "$pid")
		[ "$m" -le "$peak" ] || peak=$m
		m=$(($(used_mib) - base))
		[ "$m" -le "$total" ] || total=$m
		sleep 0.2
	done
	if ! wait "$pid"; then
		echo "gpu-check: $impl $what failed: $(tail -c 2000 "$out")" >&2
		rm -f "$out"
		return 0
	fi
	[ "$peak" -gt 0 ] || peak=$total
	python3 -c 'import json, sys; r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); r.update(impl=sys.argv[2], what=sys.argv[3], peak_mib=int(sys.argv[4])); print(json.dumps(r))' \
		"$out" "$impl" "$what" "$peak" | tee -a "$results"
	rm -f "$out"
}

for b in 1 8 32 256; do
	measure tsd "decode b=$b" "$tsd" bench decode --model "$model" --device cuda --batch "$b" --new "$new" --repeat 2
	measure pytorch "decode b=$b" python3 "$root/deploy/gpu-check.py" decode --batch "$b" --new "$new" --repeat 2
done
measure tsd "train 4x512" "$tsd" bench train --model "$model" --device cuda --batch 4 --seq 512 --repeat 3
measure pytorch "train 4x512" python3 "$root/deploy/gpu-check.py" train --batch 4 --seq 512 --repeat 3
if python3 -c 'import transformers' 2>/dev/null; then
	for b in 1 8 32 256; do
		measure hf-generate "decode b=$b" python3 "$root/deploy/gpu-check.py" hf --batch "$b" --new "$new" --repeat 2
	done
else
	echo "gpu-check: transformers is not installed: no Hugging Face generate figures"
fi

echo
echo "gpu-check: $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader -i 0), $(date -u +%Y-%m-%d), $((SECONDS - t0)) s in all"
python3 "$root/deploy/gpu-check.py" table "$results"
