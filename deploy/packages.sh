#!/bin/sh
# Installs what a tsd image needs on Debian bookworm, as root, inside the image being made: run by
# deploy/base-image.sh in its debootstrap chroot and by the Dockerfile's stages, so a stock
# debian:bookworm(-slim) base ends up with the same files as the locally built one.
#
#   packages.sh runtime   libtorch 1.13 (Debian's CPU build) with OpenBLAS, CA certificates
#   packages.sh build     runtime + libtorch-dev, g++, make, curl, unzip (cgo build of tsd)
#
# Installs only what is missing; leaves no apt lists or caches behind.
set -eu

runtime="libtorch1.13 libopenblas0-pthread ca-certificates"
build="$runtime libtorch-dev g++ make curl unzip"
case "${1:-}" in
runtime) want=$runtime ;;
build) want=$build ;;
*)
	echo "usage: packages.sh runtime|build" >&2
	exit 2
	;;
esac

# libtorch1.13 depends on OpenCV, FFmpeg and GDAL (for Caffe2 ops tsd never calls), which pull in
# Mesa, LLVM and data files. libtorch_cpu links the libraries, so those stay; the GL drivers, LLVM,
# Z3 (LLVM's), the geodata and the docs are never loaded and are left out (about 330 MB).
# The check at the end proves every library libtorch links is present.
cat >/etc/dpkg/dpkg.cfg.d/tsd-slim <<'EOF'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
path-exclude=/usr/lib/*/dri/*
path-exclude=/usr/lib/*/libLLVM-15.so*
path-exclude=/usr/lib/*/libz3.so*
path-exclude=/usr/share/proj/*
path-exclude=/usr/share/gdal/*
path-exclude=/usr/share/iso-codes/*
path-exclude=/usr/share/xml/iso-codes/*
EOF

# What was installed before these rules (debootstrap's own packages) is trimmed the same way.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/*

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "packages: installing$missing" >&2
	log=$(mktemp)
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing; } >"$log" 2>&1; then
		tail -30 "$log" >&2
		exit 1
	fi
	rm -f "$log"
	apt-get clean
	rm -rf /var/lib/apt/lists/*
fi

# Debian's libtorch links the generic libblas.so.3; make it OpenBLAS (30x the reference BLAS).
for blas in /usr/lib/*/openblas-pthread/libblas.so.3 /usr/lib/*/openblas-pthread/liblapack.so.3; do
	triplet=$(basename "$(dirname "$(dirname "$blas")")")
	update-alternatives --quiet --set "$(basename "$blas")-$triplet" "$blas"
done

torch=$(dpkg -L libtorch1.13 | grep '/libtorch_cpu\.so\.' | head -1)
if ldd "$torch" | grep 'not found'; then
	echo "packages: libraries libtorch links are missing (above)" >&2
	exit 1
fi
