#!/bin/sh
# Stand-ins for the two things Debian 13's libtorch-cuda-2.6 asks for that the Debian mirror cannot
# give, run by packages.sh as root inside the image being made:
#
#   cuda-stand-in.sh provides   installs tsd-cuda-stand-in, an empty package that Provides
#                               nvidia-cudnn (an installer that downloads cuDNN from NVIDIA at
#                               install time) and libcuda.so.1 (the driver's library, which the
#                               NVIDIA container toolkit mounts from the host at run time)
#   cuda-stand-in.sh cudnn      builds libcudnn.so.9 with every cuDNN function libtorch_cuda
#                               imports, each failing with CUDNN_STATUS_NOT_INITIALIZED
#
# libtorch_cuda.so links libcudnn.so.9 (DT_NEEDED, bound at load: BIND_NOW), so without some
# libcudnn.so.9 no binary linking libtorch-cuda starts, GPU or not. tsd calls no cuDNN op (no
# convolutions, no RNNs); `tsd doctor` reports the stand-in as cuDNN version 0. A real cuDNN 9 for
# CUDA 12, mounted and put first on LD_LIBRARY_PATH, replaces it (docs/deploy.md).
set -eu

triplet=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo "$(uname -m)-linux-gnu")

provides() {
	# Versioned: libtorch-cuda-2.6 asks for nvidia-cudnn (>= 9.0.0.312~) and libcuda.so.1 (>= 525).
	dir=$(mktemp -d)
	mkdir "$dir/DEBIAN"
	cat >"$dir/DEBIAN/control" <<'CTL'
Package: tsd-cuda-stand-in
Version: 1
Architecture: all
Maintainer: tsd <root@localhost>
Provides: nvidia-cudnn (= 9.999), libcuda.so.1 (= 999)
Description: stand-in for nvidia-cudnn and the NVIDIA driver library in tsd images
 cuDNN comes from the host or from tsd's libcudnn.so.9 stand-in; libcuda.so.1 from the
 NVIDIA container toolkit at run time.
CTL
	dpkg-deb --build "$dir" "$dir.deb" >/dev/null
	dpkg -i "$dir.deb" >/dev/null
	rm -rf "$dir" "$dir.deb"
}

cudnn() {
	torch=$(dpkg -L libtorch-cuda-2.6 | grep '/libtorch_cuda\.so\.' | head -1)
	out=/usr/lib/$triplet/tsd-cudnn-stand-in
	tools=""
	for p in gcc libc6-dev binutils; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || tools="$tools $p"
	done
	if [ -n "$tools" ]; then
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $tools >/dev/null
	fi
	src=$(mktemp -d)
	{
		echo '/* tsd: cuDNN stand-in (deploy/cuda-stand-in.sh). Every call fails. */'
		nm -D --undefined-only "$torch" | awk '$2 ~ /^cudnn/ { sub(/@.*/, "", $2); print $2 }' | sort -u |
			while read -r f; do
				case "$f" in
				cudnnGetErrorString) echo "const char *$f(void) { return \"cuDNN stand-in: no cuDNN library in this image (docs/deploy.md)\"; }" ;;
				cudnnGet*Version) echo "unsigned long $f(void) { return 0; }" ;;
				*) echo "int $f(void) { return 1001; } /* CUDNN_STATUS_NOT_INITIALIZED */" ;;
				esac
			done
	} >"$src/cudnn.c"
	echo 'libcudnn.so.9 { global: *; };' >"$src/cudnn.map"
	mkdir -p "$out"
	gcc -shared -fPIC -O1 -o "$out/libcudnn.so.9" -Wl,-soname,libcudnn.so.9 -Wl,--version-script="$src/cudnn.map" "$src/cudnn.c"
	rm -rf "$src"
	# Last in the search order: a cuDNN installed in the usual place, or on LD_LIBRARY_PATH, wins.
	echo "$out" >/etc/ld.so.conf.d/zz-tsd-cudnn-stand-in.conf
	ldconfig
	if [ -n "$tools" ]; then
		# shellcheck disable=SC2086
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq --autoremove $tools >/dev/null
	fi
}

case "${1:-}" in
provides) provides ;;
cudnn) cudnn ;;
*)
	echo "usage: cuda-stand-in.sh provides|cudnn" >&2
	exit 2
	;;
esac
