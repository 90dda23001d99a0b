#!/bin/sh
# Entry point of the tsd images: `tsd-entrypoint ROLE [flags]` runs `tsd ROLE [flags]` after
# deriving what a container cannot know in advance, and `tsd-entrypoint health` is the HEALTHCHECK.
#
# Roles are configured by TSD_* variables (flags on the command line are passed on, but the health
# probe reads its port from the variables):
#   coordinator  probed on the port of TSD_GRPC_BIND, else TSD_GRPC_ADDR (default 7001)
#   learner      probed on the port of TSD_LISTEN, else TSD_ADDR (default 7201)
#   actor        a scaled compose service: every replica needs its own id, address and, on a GPU
#                node, its own GPU, and none of them can be written in the compose file.
#
# Actor variables:
#   ACTOR_PORT   port the actor serves weights and status on (default 7301)
#   ACTOR_GPUS   GPU indices the replicas on this node share out, one each (e.g. 0,1,2,3)
#   ACTOR_HOST   address other nodes reach this node at; set with host networking, where the
#                replicas share the node's ports: replica i then serves on ACTOR_PORT+i
#   ACTOR_SLOTS  replicas per node when only ports are shared out (default 16)
#   ACTOR_ADVERTISE  host name peers reach this replica at on a shared network, also its id (a
#                Swarm stack sets the task's name, which the overlay network's DNS resolves)
# With ACTOR_GPUS or ACTOR_HOST, each replica takes the lowest free slot i by holding an flock on
# $TSD_SLOTS_DIR/slot-i (default /tsd/slots, a volume the node's replicas share); the lock lives
# as long as the tsd process, so a crashed replica's slot frees itself. Without them (bridge
# network, CPU) the replica is its container: id and address are the container's host name, or
# ACTOR_ADVERTISE.
#
# Any role:
#   TSD_TOKEN_FILE  file holding the token (a Swarm or Kubernetes secret), read into TSD_TOKEN
#   DOCKER_RESOURCE_NVIDIA-GPU  the GPU Swarm assigned this task (generic resource NVIDIA-GPU):
#                becomes CUDA_VISIBLE_DEVICES, and the device cuda unless TSD_DEVICE says otherwise
set -eu

health_file=${TSD_HEALTH_FILE:-/tmp/tsd-health-addr}

port_of() { # host:port -> port
	echo "${1##*:}"
}

# claim takes the lowest free slot below $1 and keeps it locked on fd 9; sets $slot.
claim() {
	dir=${TSD_SLOTS_DIR:-/tsd/slots}
	mkdir -p "$dir"
	i=0
	while [ "$i" -lt "$1" ]; do
		exec 9>>"$dir/slot-$i"
		if flock -n 9; then
			slot=$i
			return 0
		fi
		exec 9>&-
		i=$((i + 1))
	done
	echo "tsd-entrypoint: all $1 slots in $dir are taken (more replicas than ACTOR_GPUS/ACTOR_SLOTS)" >&2
	exit 1
}

actor_env() {
	port=${ACTOR_PORT:-7301}
	host=$(hostname)
	gpu=""
	if [ -n "${ACTOR_GPUS:-}" ] || [ -n "${ACTOR_HOST:-}" ]; then
		if [ -n "${ACTOR_GPUS:-}" ]; then
			claim "$(echo "$ACTOR_GPUS" | tr ',' '\n' | grep -c .)"
			gpu=$(echo "$ACTOR_GPUS" | tr ',' '\n' | grep . | sed -n "$((slot + 1))p")
			export CUDA_VISIBLE_DEVICES="$gpu"
			: "${TSD_DEVICE:=cuda}"
			export TSD_DEVICE
		else
			claim "${ACTOR_SLOTS:-16}"
		fi
		if [ -n "${ACTOR_HOST:-}" ]; then
			port=$((port + slot))
			host=$ACTOR_HOST
		fi
		: "${TSD_ID:=$(hostname)-$slot}"
		export TSD_ID
		echo "tsd-entrypoint: actor slot $slot: id $TSD_ID, port $port${gpu:+, GPU $gpu}" >&2
	elif [ -n "${ACTOR_ADVERTISE:-}" ]; then
		host=$ACTOR_ADVERTISE
		: "${TSD_ID:=$host}"
		export TSD_ID
	fi
	: "${TSD_ADDR:=$host:$port}" "${TSD_LISTEN:=0.0.0.0:$port}"
	export TSD_ADDR TSD_LISTEN
	echo "127.0.0.1:$(port_of "$TSD_LISTEN")" >"$health_file"
}

# common_env applies what any role takes from its orchestrator: a token file, an assigned GPU.
common_env() {
	if [ -n "${TSD_TOKEN_FILE:-}" ]; then
		[ -r "$TSD_TOKEN_FILE" ] || { echo "tsd-entrypoint: TSD_TOKEN_FILE $TSD_TOKEN_FILE is not readable" >&2; exit 1; }
		TSD_TOKEN=$(cat "$TSD_TOKEN_FILE")
		[ -n "$TSD_TOKEN" ] || { echo "tsd-entrypoint: TSD_TOKEN_FILE $TSD_TOKEN_FILE is empty" >&2; exit 1; }
		export TSD_TOKEN
	fi
	# Not a valid shell name (the dash), which dash drops from its own environment: read it from
	# the one this process started with.
	swarm_gpu=$(tr '\0' '\n' </proc/$$/environ | sed -n 's/^DOCKER_RESOURCE_NVIDIA-GPU=//p')
	if [ -n "$swarm_gpu" ]; then
		export CUDA_VISIBLE_DEVICES="$swarm_gpu"
		: "${TSD_DEVICE:=cuda}"
		export TSD_DEVICE
	fi
}

role=${1:-}
case "$role" in
coordinator | learner | actor) common_env ;;
esac
case "$role" in
coordinator)
	echo "127.0.0.1:$(port_of "${TSD_GRPC_BIND:-${TSD_GRPC_ADDR:-127.0.0.1:7001}}")" >"$health_file"
	;;
learner)
	echo "127.0.0.1:$(port_of "${TSD_LISTEN:-${TSD_ADDR:-127.0.0.1:7201}}")" >"$health_file"
	;;
actor)
	actor_env
	;;
health)
	[ -s "$health_file" ] || { echo "tsd-entrypoint: no tsd server role runs in this container" >&2; exit 1; }
	exec tsd health --addr "$(cat "$health_file")"
	;;
"")
	set -- doctor
	;;
esac
exec tsd "$@"
