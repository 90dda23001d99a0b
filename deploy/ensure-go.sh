#!/usr/bin/env bash
# Prints the path of a Go toolchain new enough for go.mod, installing one when there is none: a fresh
# Debian 12 has no Go (its golang package is 1.19), but the Go module proxy serves official toolchains.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
want=go$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$root/go.mod")
pinned=${TSD_GO_VERSION:-go1.26.8}

new_enough() { # $1 = path to a go binary
	local have
	have=$("$1" env GOVERSION 2>/dev/null) || return 1
	[ "$(printf '%s\n%s\n' "$want" "$have" | sort -V | head -1)" = "$want" ]
}

for g in "$(command -v go || true)" /usr/local/go/bin/go "$HOME/.cache/tsd/$pinned/bin/go"; do
	if [ -n "$g" ] && [ -x "$g" ] && new_enough "$g"; then echo "$g"; exit 0; fi
done

arch=$(uname -m); case "$arch" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; esac
dest="$HOME/.cache/tsd/$pinned"
proxy=$(echo "${GOPROXY:-https://proxy.golang.org}" | tr ',|' '\n\n' | grep '^http' | head -1)
echo "ensure-go: no $want or newer found; fetching $pinned from $proxy" >&2
command -v curl >/dev/null && command -v unzip >/dev/null || {
	s=""; [ "$(id -u)" = 0 ] || s=sudo
	$s apt-get update -qq && $s env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl unzip ca-certificates >&2
}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
curl -fsSL -o "$tmp/go.zip" "$proxy/golang.org/toolchain/@v/v0.0.1-$pinned.linux-$arch.zip"
unzip -q "$tmp/go.zip" -d "$tmp"
mkdir -p "$(dirname "$dest")"; rm -rf "$dest"
mv "$tmp/golang.org/toolchain@v0.0.1-$pinned.linux-$arch" "$dest"
chmod +x "$dest/bin/"* "$dest/pkg/tool/"*/* 2>/dev/null || true
echo "$dest/bin/go"
