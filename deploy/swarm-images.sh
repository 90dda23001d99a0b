#!/usr/bin/env bash
# Puts images on every node of a Swarm that can reach no registry (docs/deploy.md), two ways:
#
#   deploy/swarm-images.sh load IMAGE NODE...   docker save | ssh NODE docker load, node by node.
#                                               Simple; but `docker stack deploy` records no digest,
#                                               so each node runs whatever IMAGE means there.
#   deploy/swarm-images.sh registry IMAGE...    runs a registry as a Swarm service (published on
#                                               port 5000 of every node) and pushes each IMAGE to
#                                               it; prints the names to deploy, 127.0.0.1:5000/...,
#                                               which `docker stack deploy` pins to a digest.
#   deploy/swarm-images.sh registry-rm          removes that service, its volume and image.
#
# Variables: TSD_REGISTRY_NAME (service, volume and image name, default tsd-registry),
# TSD_REGISTRY_PORT (5000), TSD_REGISTRY_PUBLISH (ingress: the routing mesh, every node; host: only
# the node the registry runs on, for a one-node swarm or where the routing mesh does not forward
# — on this project's engine it does not), TSD_BASE_IMAGE (the registry's base image, default tsd-base:bookworm),
# SSH (the command that reaches a node, default ssh). Every node's engine trusts 127.0.0.1:PORT
# without TLS (loopback registries are insecure-allowed by default), and the routing mesh forwards
# that port to the registry wherever it runs.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
name=${TSD_REGISTRY_NAME:-tsd-registry}
port=${TSD_REGISTRY_PORT:-5000}

usage() {
	sed -n '2,13p' "$0" >&2
	exit 2
}

load() {
	local image=$1
	shift
	[ $# -gt 0 ] || usage
	docker image inspect "$image" >/dev/null
	for node in "$@"; do
		echo "swarm-images: $image -> $node"
		docker save "$image" | ${SSH:-ssh} "$node" docker load
	done
}

# registry_up builds the registry image from deploy/registry (a Go module of its own) and starts the
# service on a manager, unless it runs already.
registry_up() {
	if ! docker service inspect "$name" >/dev/null 2>&1; then
		ctx=$(mktemp -d)
		trap 'rm -rf "$ctx"' EXIT
		(cd deploy/registry && CGO_ENABLED=0 GOFLAGS=-trimpath "$(../ensure-go.sh)" build -o "$ctx/registry" .)
		cp deploy/registry/Dockerfile "$ctx/"
		docker build -q --build-arg BASE="${TSD_BASE_IMAGE:-tsd-base:bookworm}" -t "$name:latest" "$ctx" >/dev/null
		docker service create -d -q --name "$name" --constraint node.role==manager \
			--publish "mode=${TSD_REGISTRY_PUBLISH:-ingress},published=$port,target=5000" \
			--mount "type=volume,source=$name,target=/var/lib/registry" "$name:latest" >/dev/null
	fi
	local deadline=$((SECONDS + 60))
	until curl -fsS "http://127.0.0.1:$port/v2/" >/dev/null 2>&1; do
		[ "$SECONDS" -lt "$deadline" ] || {
			echo "swarm-images: registry $name not answering on 127.0.0.1:$port" >&2
			docker service ps --no-trunc "$name" >&2
			exit 1
		}
		sleep 1
	done
}

registry() {
	[ $# -gt 0 ] || usage
	registry_up
	for image in "$@"; do
		local ref=127.0.0.1:$port/$image
		docker tag "$image" "$ref"
		docker push -q "$ref" >/dev/null
		echo "$ref"
	done
}

registry_rm() {
	docker service rm "$name" >/dev/null 2>&1 || true
	local deadline=$((SECONDS + 60))
	while [ -n "$(docker ps -aq --filter "label=com.docker.swarm.service.name=$name")" ]; do
		[ "$SECONDS" -lt "$deadline" ] || break
		sleep 1
	done
	docker volume rm "$name" >/dev/null 2>&1 || true
	docker rmi "$name:latest" >/dev/null 2>&1 || true
}

case "${1:-}" in
load) shift && [ $# -ge 2 ] && load "$@" || usage ;;
registry) shift && registry "$@" ;;
registry-rm) registry_rm ;;
*) usage ;;
esac
