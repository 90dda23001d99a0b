#!/usr/bin/env bash
# End-to-end test of the images and compose files on a real Docker engine (`make e2e`): builds
# tsd:cpu offline, starts docker-compose.yml with 2 actors on the tiny model, and checks from the
# host over gRPC that
#   1. the policy version advances,
#   2. after --scale actor=3 the learner reports 3 actors,
#   3. with the raft leader's container and one actor stopped, a new leader is elected and the
#      versions keep advancing; the old leader, started again, rejoins,
#   4. an actor-only node (deploy/compose.actors.yml, host networking) joins the running system,
#      and its second replica takes the next port.
# Everything it started is removed on exit, pass or fail. Needs root (debootstrap) and ports
# 7001-7003, 7201, 7301 and 7302 free on the host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

project=tsd-e2e-$$
node2=tsd-e2e-node2-$$
tsd=bin/tsd
coordinators=127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003
learner=127.0.0.1:7201
export TSD_PUBLISH_IP=127.0.0.1 TSD_IMAGE=tsd:cpu
start=$SECONDS
mark=$SECONDS
timings=()

if docker compose version >/dev/null 2>&1; then
	compose=(docker compose)
elif command -v docker-compose >/dev/null; then
	compose=(docker-compose)
else
	echo "e2e: neither 'docker compose' nor docker-compose is installed" >&2
	exit 1
fi
head_compose() { "${compose[@]}" -p "$project" -f docker-compose.yml "$@"; }
node2_compose() { "${compose[@]}" -p "$node2" -f deploy/compose.actors.yml "$@"; }

# phase NAME records how long the step that just ended took.
phase() {
	timings+=("$1 $((SECONDS - mark)) s")
	echo "e2e: $1 done in $((SECONDS - mark)) s"
	mark=$SECONDS
}

fail() {
	echo "e2e: FAIL: $*" >&2
	exit 1
}

teardown() {
	local rc=$?
	if [ "$rc" != 0 ] && [ -n "${up:-}" ]; then
		echo "e2e: state at the failure:" >&2
		head_compose ps >&2 || true
		head_compose logs --no-color --tail 25 learner actor coord1 coord2 coord3 >&2 || true
		node2_compose logs --no-color --tail 25 >&2 || true
	fi
	if [ -n "${up:-}" ]; then
		HEAD_ADDR=127.0.0.1 ACTOR_HOST=127.0.0.1 node2_compose down -v --remove-orphans >/dev/null 2>&1 || true
		head_compose down -v --remove-orphans >/dev/null 2>&1 || true
	fi
	echo "e2e: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
	exit "$rc"
}
trap teardown EXIT

# learner_status prints the learner's status as JSON (protojson spaces vary: parse with ' *').
learner_status() { "$tsd" status --learner "$learner" --json --timeout 5s 2>/dev/null; }
version() { learner_status | grep -o '"version": *"[0-9]*"' | grep -o '[0-9][0-9]*' || echo 0; }
actors() { learner_status | grep -o '"actorId": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/' | sort; }
actor_count() { actors | grep -c . || true; }
leader() { "$tsd" cluster --coordinators "$coordinators" --json --timeout 5s 2>/dev/null | grep -o '"leaderId": *"[^"]*"' | sed 's/.*"\([^"]*\)"$/\1/'; }

# wait_until SECONDS DESCRIPTION COMMAND... polls COMMAND every 2 s.
wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not within $limit s (version $(version), actors $(actor_count))"
		sleep 2
	done
	echo "e2e: ok: $what (version $(version), actors $(actor_count), $((SECONDS - mark)) s)"
}
version_at_least() { [ "$(version)" -ge "$1" ]; }
actors_are() { [ "$(actor_count)" = "$1" ]; }
actors_are_and_version_at_least() { actors_are "$1" && version_at_least "$2"; }
has_actor() { actors | grep -x "$1" >/dev/null; } # grep -q would stop reading early: SIGPIPE under pipefail
serving() { "$tsd" health --addr "$1" >/dev/null 2>&1; }

for port in 7001 7002 7003 7201 7301 7302; do
	if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
		fail "port $port is in use on this host (the compose files publish it)"
	fi
done

deploy/image.sh "$TSD_IMAGE"
phase "images"

head_compose config -q
head_compose -f deploy/compose.gpu.yml config -q
HEAD_ADDR=192.0.2.1 ACTOR_HOST=192.0.2.2 node2_compose config -q
HEAD_ADDR=192.0.2.1 ACTOR_HOST=192.0.2.2 node2_compose -f deploy/compose.actors.gpu.yml config -q
phase "compose config (cpu, gpu, actor node cpu and gpu)"

up=1
head_compose up -d --scale actor=2
wait_until 300 "2 actors stream and the policy version advances" actors_are_and_version_at_least 2 2
phase "up with 2 actors"

head_compose up -d --scale actor=3
wait_until 180 "the learner reports 3 actors" actors_are 3
phase "scale to 3 actors"

old_leader=$(leader)
[ -n "$old_leader" ] || fail "no raft leader"
victim=$(head_compose ps -q actor | awk "NR == 1") # not head -1: it would close the pipe early, SIGPIPE under pipefail
v=$(version)
echo "e2e: stopping the raft leader $old_leader and actor ${victim:0:12} at version $v"
docker stop "$(head_compose ps -q "$old_leader")" "$victim" >/dev/null
wait_until 180 "2 actors left, versions still advance (from v$v)" actors_are_and_version_at_least 2 $((v + 3))
# Right after the stop, followers still name the old leader, and under load an election can take a
# few rounds: poll until another node leads.
new_leader() { local l; l=$(leader); [ -n "$l" ] && [ "$l" != "$old_leader" ]; }
wait_until 60 "a new raft leader is elected (was $old_leader)" new_leader
echo "e2e: ok: new raft leader $(leader)"
phase "leader and actor stopped"

docker start "$(head_compose ps -q "$old_leader")" >/dev/null
wait_until 120 "the old leader $old_leader rejoins and reports SERVING" serving "127.0.0.1:700${old_leader#coord}"
phase "old leader restarted"

node_host=$(hostname)
# The host's first IPv4 address: the head node's containers reach the actor node's actors there.
actor_host=$(hostname -I | tr ' ' '\n' | grep -m1 -E '^[0-9]+(\.[0-9]+){3}$' || echo 127.0.0.1)
v=$(version)
HEAD_ADDR=127.0.0.1 ACTOR_HOST=$actor_host node2_compose up -d
wait_until 180 "actor $node_host-0 of an actor-only node joins (from v$v)" \
	eval "has_actor $node_host-0 && version_at_least $((v + 2))"
HEAD_ADDR=127.0.0.1 ACTOR_HOST=$actor_host node2_compose up -d --scale actor=2
wait_until 180 "its second replica $node_host-1 (port 7302) joins" has_actor "$node_host-1"
phase "actor-only node joins, scales to 2"

echo "e2e: tsd status --learner $learner (from the host, over gRPC):"
"$tsd" status --learner "$learner" | sed 's/^/    /'
echo "e2e: tsd cluster:"
"$tsd" cluster --coordinators "$coordinators" | sed 's/^/    /'
echo "e2e: durations: $(printf '%s; ' "${timings[@]}")"
