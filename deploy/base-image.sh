#!/usr/bin/env bash
# Builds a Debian base image of the tsd images without a container registry: debootstrap makes a
# minbase root filesystem from the Debian mirror, deploy/packages.sh adds a package set (libtorch,
# OpenBLAS, ...), and `docker import` turns it into an image.
#
#   deploy/base-image.sh [TAG [SUITE [SET]]]   # needs a Docker engine, and root (sudo)
#
#   tsd-base:bookworm bookworm runtime   (the default) Debian 12's libtorch 1.13: the CPU image
#   tsd-base:trixie-build trixie build    Debian 13's libtorch 2.6 and g++: `make test-torch2`
#   tsd-base:trixie-cuda trixie cuda      Debian 13's libtorch-cuda 2.6 and CUDA 12.4: `make image-cuda`
#
#   TSD_DEBIAN_MIRROR     Debian mirror (default http://deb.debian.org/debian)
#   TSD_DEBIAN_SECURITY   security mirror (default http://deb.debian.org/debian-security; "" = none)
#   TSD_BASE_FORCE=1      rebuild even when TAG was built from the same inputs
#
# With a registry you need none of this: pass --build-arg BASE=debian:bookworm-slim to the
# Dockerfile instead; its stages run packages.sh themselves.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
tag=${1:-tsd-base:bookworm}
suite=${2:-bookworm}
pkgset=${3:-runtime}
mirror=${TSD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${TSD_DEBIAN_SECURITY-http://deb.debian.org/debian-security}
components=main
[ "$suite" = bookworm ] || components="main contrib non-free" # libtorch-cuda: contrib; CUDA: non-free

sudo="" # debootstrap, chroot and mount need root
[ "$(id -u)" = 0 ] || sudo=sudo
docker version --format '{{.Server.Version}}' >/dev/null || { echo "base-image: no Docker engine answers" >&2; exit 1; }

# The image is rebuilt only when what goes into it changes (the packages' versions follow the
# mirror on each rebuild; TSD_BASE_FORCE=1 picks up security updates).
key=$(cat "$0" "$root/deploy/packages.sh" "$root/deploy/cuda-stand-in.sh" <(echo "$mirror $security $suite $pkgset") |
	sha256sum | cut -c1-16)
if [ "${TSD_BASE_FORCE:-0}" != 1 ] &&
	[ "$(docker image inspect -f '{{index .Config.Labels "tsd.base.key"}}' "$tag" 2>/dev/null)" = "$key" ]; then
	echo "base-image: $tag is up to date (key $key)"
	exit 0
fi

if ! command -v debootstrap >/dev/null; then
	$sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

work=$(mktemp -d /var/tmp/tsd-base.XXXXXX)
rootfs=$work/rootfs
cleanup() {
	if mountpoint -q "$rootfs/proc"; then $sudo umount "$rootfs/proc"; fi
	$sudo rm -rf "$work"
}
trap cleanup EXIT

t0=$SECONDS
echo "base-image: debootstrap $suite minbase from $mirror for $tag ($pkgset)"
$sudo debootstrap --variant=minbase --components="${components// /,}" "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 ||
	{ tail -20 "$work/debootstrap.log" >&2; exit 1; }
t1=$SECONDS

{
	echo "deb $mirror $suite $components"
	echo "deb $mirror $suite-updates $components"
	[ -z "$security" ] || echo "deb $security $suite-security $components"
} | $sudo tee "$rootfs/etc/apt/sources.list" >/dev/null
$sudo cp /etc/resolv.conf "$rootfs/etc/resolv.conf"
$sudo cp "$root/deploy/packages.sh" "$root/deploy/cuda-stand-in.sh" "$rootfs/tmp/"
$sudo mount -t proc proc "$rootfs/proc"
$sudo chroot "$rootfs" /bin/sh /tmp/packages.sh "$pkgset"
$sudo umount "$rootfs/proc"
# Docker supplies these at run time; the build host's must not leak into the image.
$sudo rm -f "$rootfs/tmp/packages.sh" "$rootfs/tmp/cuda-stand-in.sh" "$rootfs/etc/hostname"
$sudo truncate -s 0 "$rootfs/etc/resolv.conf"
t2=$SECONDS

old=$(docker image inspect -f '{{.Id}}' "$tag" 2>/dev/null || true)
echo "base-image: importing $($sudo du -sh "$rootfs" | cut -f1) as $tag"
cuda_env=() # what the NVIDIA container toolkit reads: mount the driver's compute libraries
[ "$pkgset" = "${pkgset#cuda}" ] || cuda_env=(--change "ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility")
$sudo tar -C "$rootfs" --numeric-owner -c . | docker import \
	--change "LABEL tsd.base.key=$key" \
	--change "ENV LANG=C.UTF-8" "${cuda_env[@]}" \
	--change 'CMD ["/bin/bash"]' \
	- "$tag" >/dev/null
if [ -n "$old" ] && [ "$(docker image inspect -f '{{len .RepoTags}}' "$old" 2>/dev/null)" = 0 ]; then
	docker rmi "$old" >/dev/null 2>&1 || true # still used by an image or container: left alone
fi
echo "base-image: $tag built: debootstrap $((t1 - t0)) s, packages $((t2 - t1)) s, import $((SECONDS - t2)) s"
