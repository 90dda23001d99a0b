#!/usr/bin/env bash
# Proves the GPU check's offline build: in a container with no network and no Go, built from
# tsd-base:trixie-build (Debian 13's libtorch 2.6; deploy/base-image.sh), deploy/gpu-check.sh
# unpacks the bundle (deploy/gpu-bundle.sh), builds tsd from a copy of this tree and runs tsd doctor.
#
#   deploy/gpu-bundle-test.sh [BUNDLE]     # default build/gpu-bundle
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bundle=$(cd "${1:-$root/build/gpu-bundle}" && pwd)
image=${TSD_TORCH2_IMAGE:-tsd-base:trixie-build}
"$root/deploy/base-image.sh" "$image" trixie build
t0=$SECONDS
docker run --rm --network none -v "$root:/src:ro" -v "$bundle:/bundle:ro" \
	-e TSD_GPU_BUNDLE=/bundle -e TSD_GPU_BUILD_ONLY=1 "$image" bash -euo pipefail -c '
		! command -v go >/dev/null || { echo "the image has a Go: the test would prove nothing" >&2; exit 1; }
		mkdir -p /build/tsd && cd /build/tsd
		tar -C /src --exclude=./.git --exclude=./third_party --exclude=./bin --exclude=./build --exclude=./runs -cf - . | tar -xf -
		deploy/gpu-check.sh
	'
echo "gpu-bundle-test: offline build from $bundle passed ($((SECONDS - t0)) s)"
