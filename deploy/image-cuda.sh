#!/usr/bin/env bash
# Builds the CUDA image tsd:cuda with nothing but the Debian mirror (`make image-cuda`): no
# registry, no download site.
#
#   1. tsd-base:trixie-cuda: debootstrap Debian 13 with contrib and non-free, libtorch-cuda 2.6 and
#      the CUDA 12.4 runtime libraries, and stand-ins for cuDNN and the driver library
#      (deploy/base-image.sh, deploy/cuda-stand-in.sh);
#   2. tsd-build:cuda: that plus libtorch-cuda-dev and g++ (deploy/Dockerfile.cuda);
#   3. tsd built in a tsd-build:cuda container with no network, from the source, the host's Go
#      toolchain and module cache (read-only mounts), with its own Go build cache on the host;
#   4. the runtime stage of deploy/Dockerfile on the base, and the binary (deploy/Dockerfile.prebuilt),
#      which checks that `tsd doctor` runs.
#
#   deploy/image-cuda.sh [TAG]     # default tsd:cuda
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
tag=${1:-tsd:cuda}
base=tsd-base:trixie-cuda
build=tsd-build:cuda
runtime=${tag%%:*}-runtime:${tag#*:}
cache=${TSD_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tsd/cuda}
go=$(deploy/ensure-go.sh)

old=$(docker image inspect -f '{{.Id}}' "$build" "$runtime" "$tag" 2>/dev/null || true)
t0=$SECONDS
deploy/base-image.sh "$base" trixie cuda
docker build -q -f deploy/Dockerfile.cuda --build-arg BASE="$base" -t "$build" deploy >/dev/null
t1=$SECONDS

"$go" mod download
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$cache"
# GOSUMDB=off: the module cache was checked on the host; see deploy/torch2-test.sh.
docker run --rm --network none \
	-v "$root:/src:ro" \
	-v "$("$go" env GOROOT):/usr/local/go:ro" \
	-v "$("$go" env GOMODCACHE):/gomod" \
	-v "$cache:/cache" -v "$cache/third_party:/build/tsd/third_party" -v "$out:/out" \
	-e PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	-e GOMODCACHE=/gomod -e GOCACHE=/cache/go-build -e GOFLAGS=-trimpath \
	-e GOPROXY=off -e GOSUMDB=off -e GOTOOLCHAIN=local -e GOTELEMETRY=off -e HOME=/cache \
	"$build" bash -euo pipefail -c '
		mkdir -p /build/tsd && cd /build/tsd
		tar -C /src --exclude=./.git --exclude=./third_party --exclude=./bin --exclude=./build --exclude=./runs -cf - . | tar -xf -
		deploy/gotch/setup.sh
		go build -o /out/tsd ./cmd/tsd
	'
t2=$SECONDS

docker build -q -f deploy/Dockerfile --target runtime --build-arg BASE="$base" -t "$runtime" . >/dev/null
docker build -q -f deploy/Dockerfile.prebuilt --build-arg RUNTIME="$runtime" -t "$tag" "$out" >/dev/null
for id in $old; do
	if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
		docker rmi "$id" >/dev/null 2>&1 || true # still used by a container: left alone
	fi
done
size=$(docker image inspect -f '{{.Size}}' "$tag")
echo "image-cuda: $tag built, $((size / 1000000)) MB (base and build images $((t1 - t0)) s, tsd binary $((t2 - t1)) s, image $((SECONDS - t2)) s)"
