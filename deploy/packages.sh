#!/bin/sh
# Installs what a tsd image needs, as root, inside the image being made: run by deploy/base-image.sh
# in its debootstrap chroot and by the Dockerfiles' stages, so a stock Debian base ends up with the
# same files as the locally built one. The release decides the libtorch: Debian 12 (bookworm) has
# 1.13 (CPU), Debian 13 (trixie) 2.6, CPU or CUDA 12.4 (contrib and non-free).
#
#   packages.sh runtime      libtorch (CPU) with OpenBLAS, CA certificates
#   packages.sh build        runtime + libtorch-dev, g++, make (cgo build of tsd)
#   packages.sh cuda         trixie: libtorch-cuda 2.6 and the CUDA runtime libraries, with stand-ins
#                            for what the mirror cannot give (deploy/cuda-stand-in.sh)
#   packages.sh cuda-build   cuda + libtorch-cuda-dev, g++, make
#
# On a CUDA base, "runtime" is "cuda": the two libtorch builds conflict. Installs only what is
# missing; leaves no apt lists or caches behind.
set -eu

. /etc/os-release
cuda_installed=false
dpkg-query -W -f='${Status}' libtorch-cuda-2.6 2>/dev/null | grep -q "ok installed" && cuda_installed=true
set=${1:-}
if $cuda_installed; then
	case "$set" in runtime) set=cuda ;; build) set=cuda-build ;; esac
fi
case "$VERSION_CODENAME/$set" in
bookworm/runtime | bookworm/build) torch=libtorch1.13 dev="libtorch-dev curl unzip" ;;
trixie/runtime | trixie/build) torch=libtorch2.6 dev=libtorch-dev ;;
trixie/cuda | trixie/cuda-build) torch=libtorch-cuda-2.6 dev=libtorch-cuda-dev ;;
*)
	echo "usage: packages.sh runtime|build|cuda|cuda-build (cuda: Debian 13 only; this is ${VERSION_CODENAME:-unknown})" >&2
	exit 2
	;;
esac
want="$torch libopenblas0-pthread ca-certificates"
case "$set" in *build) want="$want $dev g++ make" ;; esac

cat >/etc/dpkg/dpkg.cfg.d/tsd-slim <<'CFG'
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/locale/*
CFG
if [ "$VERSION_CODENAME" = bookworm ]; then
	# libtorch1.13 depends on OpenCV, FFmpeg and GDAL (for Caffe2 ops tsd never calls), which pull
	# in Mesa, LLVM and data files. libtorch_cpu links the libraries, so those stay; the GL drivers,
	# LLVM, Z3 (LLVM's), the geodata and the docs are never loaded and are left out (about 330 MB).
	# The check at the end proves every library libtorch links is present.
	cat >>/etc/dpkg/dpkg.cfg.d/tsd-slim <<'CFG'
path-exclude=/usr/lib/*/dri/*
path-exclude=/usr/lib/*/libLLVM-15.so*
path-exclude=/usr/lib/*/libz3.so*
path-exclude=/usr/share/proj/*
path-exclude=/usr/share/gdal/*
path-exclude=/usr/share/iso-codes/*
path-exclude=/usr/share/xml/iso-codes/*
CFG
fi

# What was installed before these rules (debootstrap's own packages) is trimmed the same way.
find /usr/share/doc -mindepth 1 ! -type d ! -name copyright -delete
rm -rf /usr/share/man/* /usr/share/info/* /usr/share/locale/*

apt_install() {
	log=$(mktemp)
	if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } >"$log" 2>&1; then
		tail -30 "$log" >&2
		exit 1
	fi
	rm -f "$log"
}

missing=""
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "packages: installing$missing" >&2
	standin="$(dirname "$0")/cuda-stand-in.sh"
	case "$set" in cuda*) $cuda_installed || sh "$standin" provides ;; esac
	# shellcheck disable=SC2086 # word splitting of the package list is intended
	apt_install $missing
	case "$set" in cuda*) $cuda_installed || sh "$standin" cudnn ;; esac
	apt-get clean
	rm -rf /var/lib/apt/lists/*
fi

# Debian's libtorch links the generic libblas.so.3; make it OpenBLAS (30x the reference BLAS).
for blas in /usr/lib/*/openblas-pthread/libblas.so.3 /usr/lib/*/openblas-pthread/liblapack.so.3; do
	t=$(basename "$(dirname "$(dirname "$blas")")")
	update-alternatives --quiet --set "$(basename "$blas")-$t" "$blas"
done

for lib in libtorch_cpu libtorch_cuda; do
	so=$(dpkg -L "$torch" | grep "/$lib\.so\." | head -1)
	[ -n "$so" ] || continue
	if ldd "$so" | grep 'not found'; then
		echo "packages: libraries $lib links are missing (above)" >&2
		exit 1
	fi
done

