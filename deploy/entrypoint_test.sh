#!/usr/bin/env bash
# Tests deploy/entrypoint.sh without Docker: a fake `tsd` on PATH prints what it was started with,
# and replicas are plain processes sharing a slots folder, as a node's containers share a volume.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin"
cat >"$work/bin/tsd" <<'EOF'
#!/bin/sh
echo "args=$*"
for v in TSD_ID TSD_ADDR TSD_LISTEN TSD_DEVICE TSD_TOKEN CUDA_VISIBLE_DEVICES; do eval "echo $v=\${$v:-}"; done
[ -z "${FAKE_HOLD:-}" ] || exec sleep "$FAKE_HOLD"
EOF
chmod +x "$work/bin/tsd"
export PATH="$work/bin:$PATH" TSD_SLOTS_DIR="$work/slots"
unset TSD_ID TSD_ADDR TSD_LISTEN TSD_DEVICE TSD_TOKEN TSD_TOKEN_FILE CUDA_VISIBLE_DEVICES ACTOR_GPUS ACTOR_HOST ACTOR_PORT ACTOR_ADVERTISE 2>/dev/null || true
host=$(hostname)
failed=0
n=0

# check NAME OUTPUT WANT...: every WANT line must be in OUTPUT.
check() {
	local name=$1 out=$2
	shift 2
	n=$((n + 1))
	for want in "$@"; do
		if ! grep -qxF -- "$want" <<<"$out"; then
			echo "FAIL $name: no line '$want' in:" >&2
			while IFS= read -r line; do echo "    $line"; done <<<"$out" >&2
			failed=$((failed + 1))
			return
		fi
	done
	echo "ok   $name"
}

run() { TSD_HEALTH_FILE="$work/health" "$here/entrypoint.sh" "$@" 2>&1; }

# start_held OUTFILE ENV... starts a replica that keeps its slot until killed.
start_held() {
	local out=$1
	shift
	env FAKE_HOLD=60 TSD_HEALTH_FILE="$work/health-held" "$@" "$here/entrypoint.sh" actor >"$out" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do grep -q '^args=' "$out" && return; sleep 0.1; done
	echo "FAIL: held replica did not start: $(cat "$out")" >&2
	exit 1
}

out=$(run actor --seed 3)
check "actor on a bridge network is its container" "$out" "args=actor --seed 3" "TSD_ADDR=$host:7301" \
	"TSD_LISTEN=0.0.0.0:7301" "TSD_ID=" "CUDA_VISIBLE_DEVICES="
check "actor health address" "$(cat "$work/health")" "127.0.0.1:7301"

out=$(TSD_ADDR=actor-a:9000 TSD_LISTEN=0.0.0.0:9000 run actor)
check "explicit address wins" "$out" "TSD_ADDR=actor-a:9000" "TSD_LISTEN=0.0.0.0:9000"
check "explicit address health" "$(cat "$work/health")" "127.0.0.1:9000"

start_held "$work/a" ACTOR_GPUS=3,5
check "first GPU replica takes slot 0" "$(cat "$work/a")" "CUDA_VISIBLE_DEVICES=3" "TSD_DEVICE=cuda" "TSD_ID=$host-0" \
	"TSD_ADDR=$host:7301"
held_a=${pids[-1]}
out=$(ACTOR_GPUS=3,5 run actor)
check "second GPU replica takes the next GPU" "$out" "CUDA_VISIBLE_DEVICES=5" "TSD_ID=$host-1"
start_held "$work/b" ACTOR_GPUS=3,5 TSD_DEVICE=cuda:0
check "explicit device wins" "$(cat "$work/b")" "CUDA_VISIBLE_DEVICES=5" "TSD_DEVICE=cuda:0"
n=$((n + 1))
if out=$(ACTOR_GPUS=3,5 run actor); then
	echo "FAIL more replicas than GPUs started: $out" >&2
	failed=$((failed + 1))
elif grep -q "all 2 slots" <<<"$out"; then
	echo "ok   more replicas than GPUs is refused"
else
	echo "FAIL more replicas than GPUs: unexpected message: $out" >&2
	failed=$((failed + 1))
fi
kill "$held_a"
wait "$held_a" 2>/dev/null || true
out=$(ACTOR_GPUS=3,5 run actor)
check "a dead replica's GPU is free again" "$out" "CUDA_VISIBLE_DEVICES=3" "TSD_ID=$host-0"

start_held "$work/c" ACTOR_HOST=10.0.0.2 ACTOR_PORT=7400
check "host network: the lowest free slot, its port" "$(cat "$work/c")" "TSD_ADDR=10.0.0.2:7400" \
	"TSD_LISTEN=0.0.0.0:7400" "TSD_ID=$host-0"
out=$(ACTOR_HOST=10.0.0.2 ACTOR_PORT=7400 run actor)
check "host network: held slots are skipped" "$out" "TSD_ADDR=10.0.0.2:7402" "TSD_ID=$host-2"
check "host network health follows the slot's port" "$(cat "$work/health")" "127.0.0.1:7402"

out=$(ACTOR_ADVERTISE=tsd_actor.2.x7f run actor)
check "overlay network: the advertised task name is address and id" "$out" "TSD_ADDR=tsd_actor.2.x7f:7301" \
	"TSD_ID=tsd_actor.2.x7f" "TSD_LISTEN=0.0.0.0:7301"
out=$(ACTOR_ADVERTISE=tsd_actor.2.x7f TSD_ID=a9 run actor)
check "overlay network: an explicit id wins" "$out" "TSD_ID=a9" "TSD_ADDR=tsd_actor.2.x7f:7301"

printf 's3cret\n' >"$work/token"
out=$(TSD_TOKEN_FILE="$work/token" run learner)
check "token file becomes TSD_TOKEN" "$out" "TSD_TOKEN=s3cret"
for bad in "$work/missing" "$work/empty"; do
	: >"$work/empty"
	n=$((n + 1))
	if out=$(TSD_TOKEN_FILE=$bad run coordinator); then
		echo "FAIL token file $bad accepted: $out" >&2
		failed=$((failed + 1))
	elif grep -q "TSD_TOKEN_FILE" <<<"$out" && ! grep -q '^args=' <<<"$out"; then
		echo "ok   token file $(basename "$bad") is refused before tsd starts"
	else
		echo "FAIL token file $bad: unexpected output: $out" >&2
		failed=$((failed + 1))
	fi
done
out=$(env 'DOCKER_RESOURCE_NVIDIA-GPU=GPU-4b1c' "$here/entrypoint.sh" actor 2>&1)
check "swarm's assigned GPU" "$out" "CUDA_VISIBLE_DEVICES=GPU-4b1c" "TSD_DEVICE=cuda"
out=$(env 'DOCKER_RESOURCE_NVIDIA-GPU=1' TSD_DEVICE=cuda:0 "$here/entrypoint.sh" learner 2>&1)
check "swarm's GPU for the learner, explicit device wins" "$out" "CUDA_VISIBLE_DEVICES=1" "TSD_DEVICE=cuda:0"

out=$(TSD_GRPC_ADDR=coord2:7002 TSD_GRPC_BIND=0.0.0.0:7002 run coordinator)
check "coordinator passes through" "$out" "args=coordinator"
check "coordinator health address" "$(cat "$work/health")" "127.0.0.1:7002"
out=$(TSD_ADDR=learner:7201 run learner --max-steps 3)
check "learner passes flags through" "$out" "args=learner --max-steps 3"
check "learner health address" "$(cat "$work/health")" "127.0.0.1:7201"

out=$(run health)
check "health probes the recorded address" "$out" "args=health --addr 127.0.0.1:7201"
rm -f "$work/health"
n=$((n + 1))
if out=$(run health); then
	echo "FAIL health without a server role succeeded: $out" >&2
	failed=$((failed + 1))
else
	echo "ok   health without a server role fails"
fi
check "no role runs doctor" "$(run)" "args=doctor"
check "other commands pass through" "$(run init-model --out /x)" "args=init-model --out /x"

if [ "$failed" != 0 ]; then
	echo "entrypoint: $failed of $n checks failed" >&2
	exit 1
fi
echo "entrypoint: all $n checks passed"
