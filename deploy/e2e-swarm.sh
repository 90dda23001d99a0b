#!/usr/bin/env bash
# End-to-end test of deploy/stack.yml on this machine's Docker engine as a one-node Swarm
# (`make e2e-swarm`, not part of `make test`). It
#   1. builds tsd:cpu (deploy/image.sh), turns the engine into a one-node Swarm if it is not one,
#      labels the node for every role, starts a registry service and pushes the image to it
#      (deploy/swarm-images.sh), so the stack runs a digest-pinned image;
#   2. deploys the stack with 2 actors: every service converges, the policy version advances;
#   3. scales the actors to 3: the new actor streams rollouts;
#   4. kills one actor task's container: Swarm replaces it with a new task, which joins;
#   5. checks that actors fetched versions from each other over the overlay network (relay), that
#      the version never went back, and, with the actors scaled to 0, that every accepted rollout
#      was trained exactly once or waits in the buffer (trained + buffer = accepted);
# and on exit, pass or fail, removes the stack, the registry, its volumes and the labels it added,
# and leaves the Swarm (with the docker_gwbridge network `swarm init` made) if it created it.
# Needs root (debootstrap) and port 5000 free (TSD_REGISTRY_PORT).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

stack=${TSD_E2E_STACK:-tsd-e2e-swarm}
# One node: the registry's port published on the node itself (this engine's routing mesh does not
# forward published ports).
export TSD_REGISTRY_NAME=$stack-registry TSD_REGISTRY_PORT=${TSD_REGISTRY_PORT:-5000} TSD_REGISTRY_PUBLISH=host
labels=(tsd.coord1 tsd.coord2 tsd.coord3 tsd.learner tsd.actor)
start=$SECONDS
mark=$SECONDS
timings=()
versions=()
work=$(mktemp -d)

phase() {
	timings+=("$1 $((SECONDS - mark)) s")
	echo "e2e-swarm: $1 done in $((SECONDS - mark)) s"
	mark=$SECONDS
}

fail() {
	echo "e2e-swarm: FAIL: $*" >&2
	exit 1
}

# tasks SERVICE prints the service's task containers on this node.
tasks() { docker ps -q --filter "label=com.docker.swarm.service.name=${stack}_$1"; }

# learner_status prints the learner's status as JSON, asked inside the learner's task (the overlay
# network is not reachable from the host) with the run's token.
learner_status() {
	local c
	c=$(tasks learner | awk 'NR == 1') # not head -1: SIGPIPE under pipefail
	[ -n "$c" ] || return 0
	docker exec "$c" sh -c 'TSD_TOKEN=$(cat /run/secrets/token) exec tsd status --learner 127.0.0.1:7201 --json --timeout 5s' 2>/dev/null || true
}
field() { grep -o "\"$1\": *\"*[0-9]*" <<<"$2" | grep -o '[0-9][0-9]*$' || echo 0; }
actors_of() { grep -o '"actorId": *"[^"]*"' <<<"$1" | sed 's/.*"\([^"]*\)"$/\1/' | sort; }

# poll records the learner's version (the test fails if it ever goes back) and sets $status.
poll() {
	status=$(learner_status)
	local v
	v=$(field version "$status")
	if [ "${#versions[@]}" -gt 0 ] && [ "$v" -lt "${versions[-1]}" ] && [ -n "$status" ]; then
		fail "the version went back from ${versions[-1]} to $v"
	fi
	[ -z "$status" ] || versions+=("$v")
}

wait_until() {
	local limit=$1 what=$2
	shift 2
	local deadline=$((SECONDS + limit))
	until poll && "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || fail "$what: not within $limit s (version $(field version "$status"), actors $(actors_of "$status" | grep -c . || true))"
		sleep 2
	done
	echo "e2e-swarm: ok: $what (version $(field version "$status"), actors $(actors_of "$status" | tr '\n' ' '), $((SECONDS - mark)) s)"
}
actors_are() { [ "$(actors_of "$status" | grep -c .)" = "$1" ]; }
version_at_least() { [ "$(field version "$status")" -ge "$1" ]; }
has_actor() { actors_of "$status" | grep -x "$1" >/dev/null; }
actor_rollouts() { # ID: rollouts the learner acked from that actor
	tr -d '\n ' <<<"$status" | grep -o "{[^{}]*\"actorId\":\"$1\"[^{}]*}" | grep -o '"rollouts":"[0-9]*' | grep -o '[0-9]*$' || echo 0
}
converged() { # every service of the stack runs all its replicas
	local bad
	bad=$(docker service ls --filter "label=com.docker.stack.namespace=$stack" --format '{{.Replicas}}' | awk -F'[/ ]' '$1 != $2' | wc -l)
	[ "$bad" = 0 ] && [ "$(docker service ls -q --filter "label=com.docker.stack.namespace=$stack" | wc -l)" = 5 ]
}

node=""
created_swarm=""
had_gwbridge=""
added_labels=()
deployed=""
teardown() {
	local rc=$?
	set +e
	if [ "$rc" != 0 ] && [ -n "$deployed" ]; then
		echo "e2e-swarm: state at the failure:" >&2
		docker stack ps --no-trunc "$stack" >&2
		for s in coord1 learner actor; do docker service logs --no-task-ids --tail 20 "${stack}_$s" >&2; done
	fi
	if [ -n "$deployed" ]; then
		docker stack rm "$stack" >/dev/null
		# Volumes and the network go once the task containers are gone.
		local deadline=$((SECONDS + 90))
		while [ -n "$(docker ps -aq --filter "label=com.docker.stack.namespace=$stack")" ] && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
		docker volume ls -q --filter "label=com.docker.stack.namespace=$stack" | xargs -r docker volume rm >/dev/null
		while docker network inspect "${stack}_tsd" >/dev/null 2>&1 && [ "$SECONDS" -lt "$deadline" ]; do sleep 1; done
	fi
	deploy/swarm-images.sh registry-rm
	docker rmi "127.0.0.1:$TSD_REGISTRY_PORT/tsd:cpu" >/dev/null 2>&1
	for l in "${added_labels[@]}"; do docker node update --label-rm "$l" "$node" >/dev/null; done
	if [ -n "$created_swarm" ]; then
		docker swarm leave --force >/dev/null
		[ -n "$had_gwbridge" ] || docker network rm docker_gwbridge >/dev/null 2>&1
	fi
	rm -rf "$work"
	echo "e2e-swarm: $([ "$rc" = 0 ] && echo passed || echo FAILED) in $((SECONDS - start)) s"
	exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM # an interrupted run is a failed one (teardown sees the status)

if (exec 3<>"/dev/tcp/127.0.0.1/$TSD_REGISTRY_PORT") 2>/dev/null; then
	fail "port $TSD_REGISTRY_PORT is in use on this host (the registry service publishes it)"
fi
docker stack ls --format '{{.Name}}' 2>/dev/null | grep -x "$stack" >/dev/null && fail "a stack $stack runs already"

deploy/image.sh tsd:cpu
phase "image"

docker network inspect docker_gwbridge >/dev/null 2>&1 && had_gwbridge=1
case "$(docker info --format '{{.Swarm.LocalNodeState}}')" in
inactive)
	docker swarm init --advertise-addr 127.0.0.1 --listen-addr 127.0.0.1:2377 >/dev/null
	created_swarm=1
	echo "e2e-swarm: swarm initialised (it is left again at the end)"
	;;
active)
	[ "$(docker info --format '{{.Swarm.ControlAvailable}}')" = true ] || fail "this engine is a Swarm worker: run on a manager"
	echo "e2e-swarm: using the engine's swarm (left as it is)"
	;;
*) fail "swarm state $(docker info --format '{{.Swarm.LocalNodeState}}')" ;;
esac
node=$(docker info --format '{{.Swarm.NodeID}}')
for l in "${labels[@]}"; do
	if [ -z "$(docker node inspect -f "{{index .Spec.Labels \"$l\"}}" "$node")" ]; then
		docker node update --label-add "$l=true" "$node" >/dev/null
		added_labels+=("$l")
	fi
done
image=$(deploy/swarm-images.sh registry tsd:cpu)
phase "swarm, labels, registry with $image"

openssl rand -hex 24 >"$work/token"
if command -v docker-compose >/dev/null; then # stack deploy has no dry run: validate the GPU override's merge
	TSD_TOKEN_FILE=$work/token docker-compose -f deploy/stack.yml -f deploy/stack.gpu.yml config -q
	echo "e2e-swarm: ok: deploy/stack.yml + deploy/stack.gpu.yml validate (docker-compose config)"
fi
deployed=1
TSD_IMAGE=$image TSD_TOKEN_FILE=$work/token TSD_ACTORS=2 docker stack deploy -c deploy/stack.yml "$stack"
pinned=$(docker service inspect -f '{{.Spec.TaskTemplate.ContainerSpec.Image}}' "${stack}_actor")
[[ "$pinned" == *@sha256:* ]] || fail "the actor service's image is not pinned to a digest: $pinned"
echo "e2e-swarm: ok: images pinned to a digest ($pinned)"
wait_until 300 "the stack converged" converged
wait_until 300 "2 actors stream and the version advances" eval 'actors_are 2 && version_at_least 2'
phase "deploy, 2 actors"

before=$(actors_of "$status")
docker service scale -d "${stack}_actor=3" >/dev/null
wait_until 180 "the learner reports 3 actors" actors_are 3
added=$(comm -13 <(echo "$before") <(actors_of "$status"))
wait_until 180 "the scaled-up actor $added contributed rollouts" eval '[ "$(actor_rollouts "$added")" -gt 0 ]'
phase "scale to 3"

victim=$(tasks actor | awk 'NR == 1')
victim_id=$(docker inspect -f '{{index .Config.Labels "com.docker.swarm.task.name"}}' "$victim")
v=$(field version "$status")
echo "e2e-swarm: killing actor task $victim_id (container ${victim:0:12}) at version $v"
docker kill "$victim" >/dev/null
replaced() {
	local n
	n=$(docker service ps -q --filter desired-state=running "${stack}_actor" | wc -l)
	[ "$n" = 3 ] && converged && actors_are 3 && ! has_actor "$victim_id"
}
wait_until 240 "Swarm replaced the killed task, 3 actors again" replaced
replacement=$(comm -13 <(printf '%s\n' "$before" "$added" | sort) <(actors_of "$status"))
wait_until 180 "the replacement $replacement contributed rollouts, versions advance (from v$v)" \
	eval '[ "$(actor_rollouts "$replacement")" -gt 0 ] && version_at_least $((v + 2))'
phase "actor task killed and replaced"

relayed=$(docker service logs --raw "${stack}_actor" 2>&1 | grep 'msg="weights fetched"' | grep -v "from=learner:" | grep -c . || true)
[ "$relayed" -gt 0 ] || fail "no actor fetched weights from a peer (all from the learner)"
echo "e2e-swarm: ok: $relayed version fetches came from peer actors over the overlay network, e.g.:"
docker service logs --raw "${stack}_actor" 2>&1 | grep 'msg="weights fetched"' | grep -v "from=learner:" | awk 'NR <= 2 { print "    " $0 }'

docker service scale -d "${stack}_actor=0" >/dev/null
settled() { # the learner has taken in everything the actors sent and trained what it will
	local a=$(field rolloutsAccepted "$status") t=$(field rolloutsTrained "$status") d=$(field bufferDepth "$status")
	actors_are 0 && [ "$a" -gt 0 ] && [ "$a" = "${last_a:-}" ] && [ "$((t + d))" = "$a" ]
	local ok=$?
	last_a=$a
	return $ok
}
wait_until 120 "actors gone, accepted = trained + buffered" settled
a=$(field rolloutsAccepted "$status")
t=$(field rolloutsTrained "$status")
d=$(field bufferDepth "$status")
[ "$t" -le "$a" ] || fail "trained $t rollouts of $a accepted: some twice"
echo "e2e-swarm: ok: exactly once: $a rollouts accepted = $t trained + $d buffered; ${#versions[@]} polls, versions ${versions[0]} -> ${versions[-1]} never went back"
phase "relay, exactly-once, monotonic versions"

echo "e2e-swarm: docker stack ps (running tasks):"
docker stack ps --filter desired-state=running --format '    {{.Name}} {{.Node}} {{.CurrentState}}' "$stack"
echo "e2e-swarm: tsd status:"
docker exec "$(tasks learner | awk 'NR == 1')" sh -c 'TSD_TOKEN=$(cat /run/secrets/token) exec tsd status --learner 127.0.0.1:7201' | sed 's/^/    /'
echo "e2e-swarm: durations: $(printf '%s; ' "${timings[@]}")"
