#!/usr/bin/env bash
# GPU check, for a machine with an NVIDIA GPU and a pip torch (or LIBTORCH=/path to an official
# CUDA libtorch): builds tsd against that libtorch and prints bf16 decode tokens/s and a
# forward+backward step time for the Qwen2.5-1.5B shape (random weights), plus the tiny model.
#
#   deploy/gpu-check.sh            # about 5 minutes on an H100, most of it the first build
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LIBTORCH:-}" ]; then
	LIBTORCH=$(python3 -c 'import torch, os; print(os.path.dirname(torch.__file__))')
	export LIBTORCH
fi
export TSD_TORCH_CUDA=${TSD_TORCH_CUDA:-1}
# The pip wheel's CUDA libraries live in sibling nvidia/* packages; libtorch_cuda finds them itself.
time make build
bin/tsd doctor
dir=runs/gpu-check
[ -f "$dir/q15/config.json" ] || bin/tsd init-model --preset qwen2.5-1.5b --dtype bf16 --out "$dir/q15"
[ -f "$dir/tiny/config.json" ] || bin/tsd init-model --preset tiny --out "$dir/tiny"
set -x
for b in 1 8 32; do bin/tsd bench decode --model "$dir/q15" --device cuda --batch "$b" --new 64 --repeat 2; done
bin/tsd bench train --model "$dir/q15" --device cuda --batch 1 --seq 512 --repeat 3
bin/tsd bench train --model "$dir/q15" --device cuda --batch 4 --seq 512 --repeat 3
bin/tsd bench decode --model "$dir/tiny" --device cuda --batch 64 --new 128 --repeat 2
