#!/usr/bin/env bash
# Builds tsd and runs the tests of the packages that touch tensors against Debian 13's libtorch 2.6
# (CPU), so every change is checked on a 2.x libtorch as well as on the host's 1.13 (`make
# test-torch2`, part of `make test`).
#
# The tests run in a container of tsd-base:trixie-build (deploy/base-image.sh: debootstrap, no
# registry) with no network: the source is copied in from a read-only mount, and the host's Go
# toolchain and module cache are mounted. The container's Go build cache lives on the host
# (TSD_TORCH2_CACHE), so a second run recompiles only what changed; the image is rebuilt only when
# what goes into it changes. The gotch copy for 2.6 stays there too, so its compat step (a minute of
# g++) runs only when its inputs change.
#
#   deploy/torch2-test.sh [PACKAGE...]    # default: the tensor packages below
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
image=${TSD_TORCH2_IMAGE:-tsd-base:trixie-build}
cache=${TSD_TORCH2_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tsd/torch2}
go=$("$root/deploy/ensure-go.sh")

pkgs=("$@")
if [ ${#pkgs[@]} -eq 0 ]; then
	for p in tensor model policy learner; do
		[ -d "$root/$p" ] && pkgs+=("./$p/...")
	done
fi

t0=$SECONDS
"$root/deploy/base-image.sh" "$image" trixie build
(cd "$root" && "$go" mod download) # the container has no network: every module must be here
mkdir -p "$cache"
t1=$SECONDS

# Inside: a private copy of the source (third_party/gotch is made for this libtorch, not the host's)
# at a fixed path, so the build cache's entries match from run to run. GOSUMDB=off: the mounted
# module cache was filled and checked against the checksum database on the host; inside, with no
# network, a checksum lookup not cached there (gotch, which go.mod replaces) would fail.
docker run --rm --network none \
	-v "$root:/src:ro" \
	-v "$("$go" env GOROOT):/usr/local/go:ro" \
	-v "$("$go" env GOMODCACHE):/gomod" \
	-v "$cache:/cache" -v "$cache/third_party:/build/tsd/third_party" \
	-e PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	-e GOMODCACHE=/gomod -e GOCACHE=/cache/go-build -e GOFLAGS=-trimpath \
	-e GOPROXY=off -e GOSUMDB=off -e GOTOOLCHAIN=local -e GOTELEMETRY=off -e HOME=/cache \
	-e OPENBLAS_NUM_THREADS="${OPENBLAS_NUM_THREADS:-$(nproc)}" -e OMP_WAIT_POLICY=PASSIVE \
	"$image" bash -euo pipefail -c '
		mkdir -p /build/tsd && cd /build/tsd
		tar -C /src --exclude=./.git --exclude=./third_party --exclude=./bin --exclude=./build --exclude=./runs -cf - . | tar -xf -
		deploy/gotch/setup.sh
		go build -o bin/tsd ./cmd/tsd
		bin/tsd doctor | head -5
		go vet "$@"
		go test "$@"
	' torch2 "${pkgs[@]}"
echo "torch2: libtorch 2.6 build and tests passed (image $((t1 - t0)) s, build and tests $((SECONDS - t1)) s)"
