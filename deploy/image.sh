#!/usr/bin/env bash
# Builds the CPU image tsd:cpu without a registry or network access from containers (`make image`):
# the base image by debootstrap, the runtime stage of deploy/Dockerfile, and bin/tsd built on this
# (Debian 12) host, which links the same libtorch 1.13 the image has.
#
#   deploy/image.sh [TAG]     # default tsd:cpu
#   TSD_BASE_IMAGE            base image (default tsd-base:bookworm, made by deploy/base-image.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
tag=${1:-tsd:cpu}
base=${TSD_BASE_IMAGE:-tsd-base:bookworm}
runtime=${tag%%:*}-runtime:${tag#*:}

# Images this build replaces are removed, so rebuilds leave no untagged copies behind.
old=$(docker image inspect -f '{{.Id}}' "$runtime" "$tag" 2>/dev/null || true)
t0=$SECONDS
[ "$base" != tsd-base:bookworm ] || deploy/base-image.sh "$base"
t1=$SECONDS
make --no-print-directory build
t2=$SECONDS
docker build -q -f deploy/Dockerfile --target runtime --build-arg BASE="$base" -t "$runtime" . >/dev/null
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
cp bin/tsd "$ctx/tsd"
docker build -q -f deploy/Dockerfile.prebuilt --build-arg RUNTIME="$runtime" -t "$tag" "$ctx" >/dev/null
for id in $old; do
	if [ "$(docker image inspect -f '{{len .RepoTags}}' "$id" 2>/dev/null)" = 0 ]; then
		docker rmi "$id" >/dev/null 2>&1 || true # still used by a container: left alone
	fi
done
echo "image: $tag built (base $((t1 - t0)) s, tsd binary $((t2 - t1)) s, image $((SECONDS - t2)) s)"
