#!/usr/bin/env bash
# Makes third_party/gotch: github.com/sugarme/gotch v0.9.1 made to build against the libtorch here.
#
# Idempotent and cheap when nothing changed (it compares a stamp of its inputs); deterministic, so
# re-running it changes no byte and Go's build cache stays valid.
#
#   LIBTORCH=/path        use an unpacked official libtorch (or a pip torch's torch/ folder) instead of
#                         Debian's libtorch-dev (1.13 on Debian 12, 2.6 on 13), installed with apt
#                         when missing, or libtorch-cuda-dev where that is installed (Debian 13)
#   TSD_TORCH_CUDA=0|1    link the CUDA libraries (default: 1 when $LIBTORCH/lib has libtorch_cuda.so)
#   TSD_TORCH_CXX11_ABI   _GLIBCXX_USE_CXX11_ABI of that libtorch (default: read from libc10's symbols)
#   TSD_GOTCH_SRC=/path   gotch v0.9.1's published source, unpacked, instead of the Go module cache
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
out="$root/third_party/gotch"
gotch_version=v0.9.1
go=$("$root/deploy/ensure-go.sh")

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

apt_install() {
	local missing=()
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	echo "setup: installing ${missing[*]} with apt" >&2
	as_root apt-get update -qq
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

# Debian's libtorch links the generic libblas.so.3 (reference BLAS unless an alternative is chosen):
# 5 GFLOP/s against OpenBLAS's 157 on a 1024³ fp32 matmul with 2 threads.
select_openblas() {
	local arch blas
	arch=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
	for lib in libblas.so.3 liblapack.so.3; do
		blas=/usr/lib/$arch/openblas-pthread/$lib
		[ -e "$blas" ] || continue
		if [ "$(readlink -f "/usr/lib/$arch/$lib")" != "$(readlink -f "$blas")" ]; then
			as_root update-alternatives --quiet --set "$lib-$arch" "$blas"
		fi
	done
}

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "ok installed"; }

if [ -z "${LIBTORCH:-}" ]; then
	# Debian 13's CUDA build (libtorch-cuda-dev, in images made by deploy/base-image.sh) conflicts
	# with the CPU one: use whichever is there, the CPU one by default.
	dev=libtorch-dev
	installed libtorch-cuda-dev && dev=libtorch-cuda-dev
	apt_install "$dev" libopenblas0-pthread g++
	select_openblas
	includes=/usr/include:/usr/include/torch/csrc/api/include
	libdir=""
	cuda=${TSD_TORCH_CUDA:-$([ "$dev" = libtorch-cuda-dev ] && echo 1 || echo 0)}
	abi=${TSD_TORCH_CXX11_ABI:-1}
	label="Debian ${dev%-dev} $(dpkg-query -W -f='${Version}' "$dev")"
else
	LIBTORCH=$(cd "$LIBTORCH" && pwd)
	[ -f "$LIBTORCH/include/torch/csrc/api/include/torch/torch.h" ] ||
		{ echo "setup: LIBTORCH=$LIBTORCH has no include/torch/csrc/api/include/torch/torch.h" >&2; exit 1; }
	includes=$LIBTORCH/include:$LIBTORCH/include/torch/csrc/api/include
	libdir=$LIBTORCH/lib
	if [ -z "${TSD_TORCH_CUDA:-}" ]; then
		cuda=0; [ -e "$libdir/libtorch_cuda.so" ] && cuda=1
	else
		cuda=$TSD_TORCH_CUDA
	fi
	if [ -z "${TSD_TORCH_CXX11_ABI:-}" ]; then
		abi=0; nm -D --defined-only "$libdir/libc10.so" 2>/dev/null | grep -q '__cxx11' && abi=1
	else
		abi=$TSD_TORCH_CXX11_ABI
	fi
	label="libtorch at $LIBTORCH"
fi

version_h=$(echo "$includes" | cut -d: -f2)/torch/version.h
key=$( {
	echo "$gotch_version|$includes|$libdir|$cuda|$abi|$label"
	cat "$version_h" "$0" "$root/deploy/gotch/compat/main.go"
	g++ --version | head -1
} | sha256sum | cut -d' ' -f1)

if [ -f "$out/.tsd-stamp" ] && [ "$(cat "$out/.tsd-stamp")" = "$key" ]; then
	exit 0
fi

echo "setup: preparing gotch $gotch_version for $label (cuda=$cuda, cxx11 abi=$abi)" >&2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -n "${TSD_GOTCH_SRC:-}" ]; then
	src=$TSD_GOTCH_SRC # gotch as published, unpacked (the offline GPU check: deploy/gpu-bundle.sh)
else
	# Download outside this module: its go.mod points gotch at the folder being made.
	json=$(cd "$work" && "$go" mod init tmp >/dev/null 2>&1 &&
		GOFLAGS= "$go" mod download -json "github.com/sugarme/gotch@$gotch_version") || true
	src=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$json")
fi
[ -d "$src" ] || {
	echo "setup: could not download gotch $gotch_version: $(sed -n 's/^\t"Error": "\(.*\)",*$/\1/p' <<<"${json:-}")" >&2
	exit 1
}
mkdir -p "$work/compat" "$out"
cp "$root/deploy/gotch/compat/main.go" "$work/compat/"
(cd "$work/compat" && "$go" mod init compat >/dev/null 2>&1 && GOFLAGS= "$go" build -o "$work/compat-bin" .)
"$work/compat-bin" -src "$src" -out "$out" -include "$includes" -libdir "$libdir" \
	-cuda="$([ "$cuda" = 1 ] && echo true || echo false)" -abi "$abi" -torch-label "$label"
echo "setup: $(grep -c . "$out/STUBBED_OPS.txt" || true) generated ops stubbed (list: third_party/gotch/STUBBED_OPS.txt)" >&2
echo "$key" >"$out/.tsd-stamp"
