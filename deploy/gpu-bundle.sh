#!/usr/bin/env bash
# Packs what building tsd needs on a machine with no network into one folder (default
# build/gpu-bundle, git-ignored; at most 60 MiB): deploy/gpu-check.sh unpacks it there.
#
#   go.tar.xz      the Go toolchain trimmed to what `go build` uses: bin/go, the asm, cgo, compile
#                  and link tools, and the standard library's source without tests, testdata, cmd/
#   vendor.tar.xz  `go mod vendor` of tsd (every package its build and tests import), gotch aside
#   gotch.tar.xz   gotch v0.9.1 as published (the packages tsd uses): deploy/gotch/setup.sh makes
#                  the copy for the GPU machine's libtorch from it (TSD_GOTCH_SRC)
#   MANIFEST       what is inside, from which Go, and the sizes
#
# The tsd source itself comes with the working tree. Made from this machine's Go and module cache
# (`make gpu-bundle` fills the cache first).
#
#   deploy/gpu-bundle.sh [DIR]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$root/build/gpu-bundle}
limit=$((60 * 1024 * 1024))
go=$("$root/deploy/ensure-go.sh")
goroot=$("$go" env GOROOT)
tooldir=pkg/tool/$("$go" env GOOS)_$("$go" env GOARCH)
t0=$SECONDS

rm -rf "$out"
mkdir -p "$out"
work=$(mktemp -d)
trap 'chmod -R u+w "$work" 2>/dev/null; rm -rf "$work"' EXIT

# The toolchain. src/cmd is the source of the tools themselves, which come prebuilt.
tar -C "$goroot" -c --exclude='*_test.go' --exclude=testdata --exclude=./src/cmd \
	./VERSION ./go.env ./bin/go "./$tooldir/asm" "./$tooldir/cgo" "./$tooldir/compile" "./$tooldir/link" \
	./pkg/include ./src | xz -6 -T2 >"$out/go.tar.xz"

# The modules: `go mod vendor` keeps only the packages tsd's build and tests import, without their
# tests or testdata. gotch is left out of it: the vendored copy must be the one deploy/gotch/setup.sh
# makes for the GPU machine's libtorch, from the pristine source packed below.
"$root/deploy/gotch/setup.sh" # third_party/gotch: go.mod replaces gotch with it
(cd "$root" && "$go" mod download)
mkdir -p "$work/src"
tar -C "$root" --exclude=./.git --exclude=./third_party --exclude=./bin --exclude=./build --exclude=./runs -cf - . |
	tar -C "$work/src" -xf -
cp -r "$root/third_party" "$work/src/third_party"
(cd "$work/src" && GOFLAGS=-mod=mod GOPROXY=off "$go" mod vendor -o "$work/vendor")
rm -rf "$work/vendor/github.com/sugarme/gotch"
tar -C "$work" -c vendor | xz -6 -T2 >"$out/vendor.tar.xz"

# gotch as published, only what the compat step keeps (deploy/gotch/compat: keepPath).
mkdir "$work/dl"
gotch=$(cd "$work/dl" && "$go" mod init tmp >/dev/null 2>&1 &&
	GOFLAGS= "$go" mod download -json github.com/sugarme/gotch@v0.9.1 | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p')
(cd "$gotch" && find . -maxdepth 1 -type f -print0 | tar -c --null -T - ./libtch ./ts ./nn ./half) |
	xz -6 -T2 >"$out/gotch.tar.xz"

size=$(du -sb "$out" | cut -f1)
{
	echo "tsd GPU-check bundle, made $(date -u +%Y-%m-%dT%H:%MZ) by deploy/gpu-bundle.sh"
	echo "go: $("$go" env GOVERSION) $("$go" env GOOS)/$("$go" env GOARCH)"
	echo "go.tar.xz: $(du -b "$out/go.tar.xz" | cut -f1) bytes"
	echo "vendor.tar.xz: $(du -b "$out/vendor.tar.xz" | cut -f1) bytes, $(grep -c '^# ' "$work/vendor/modules.txt") modules"
	echo "gotch.tar.xz: $(du -b "$out/gotch.tar.xz" | cut -f1) bytes (github.com/sugarme/gotch v0.9.1)"
	echo "total: $size bytes (limit $limit)"
} >"$out/MANIFEST"
cat "$out/MANIFEST"
if [ "$size" -gt "$limit" ]; then
	echo "gpu-bundle: $out is $((size / 1048576)) MiB, over the 60 MiB limit" >&2
	exit 1
fi
echo "gpu-bundle: $out ready ($((size / 1048576)) MiB, $((SECONDS - t0)) s)"
