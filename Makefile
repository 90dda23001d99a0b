# tsd: `make run` trains a tiny model end to end on CPU; `make test` checks everything.
# Every target first makes sure Go and the libtorch-compatible gotch copy exist (deploy/).

SHELL := /bin/bash
GO := $(shell deploy/ensure-go.sh)
GOBIN := $(CURDIR)/bin
STATICCHECK_VERSION := v0.8.2
PROTOC_GEN_GO_VERSION := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# OpenBLAS reads its thread count once, at load; keep it equal to torch's (tsd also sets both).
export OPENBLAS_NUM_THREADS ?= $(shell nproc)
# OpenMP threads that spin while waiting starve the other processes of a loopback run (learner and
# actors share the cores): make them sleep instead.
export OMP_WAIT_POLICY ?= PASSIVE
# Pure-Go packages run under the race detector too.
RACE_PKGS := ./tokenizer/... ./countdown/... ./mcts/... ./coordinator/... ./rpc/... ./hub/... ./rolloutlog/... \
	./weights/... ./rolloutstream/... ./algo/...

.PHONY: all gotch build test vet lint proto clean run compare image e2e e2e-swarm chart-check

all: build

gotch:
	@deploy/gotch/setup.sh

build: gotch
	$(GO) build -o bin/tsd ./cmd/tsd

vet: gotch
	$(GO) vet ./...

lint: gotch
	@test -x $(GOBIN)/staticcheck-$(STATICCHECK_VERSION) || \
		(GOBIN=$(GOBIN)/.tools $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) && \
		mv $(GOBIN)/.tools/staticcheck $(GOBIN)/staticcheck-$(STATICCHECK_VERSION))
	$(GOBIN)/staticcheck-$(STATICCHECK_VERSION) ./...

test: vet lint
	$(GO) test ./...
	$(GO) test -race $(RACE_PKGS)
	deploy/entrypoint_test.sh
	$(MAKE) --no-print-directory chart-check
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory e2e; \
	else echo "e2e: skipped: no Docker engine answers ('docker info' failed)"; fi
	@if docker info >/dev/null 2>&1; then $(MAKE) --no-print-directory test-torch2; \
	else echo "test-torch2: skipped: no Docker engine answers ('docker info' failed)"; fi

# The CPU image tsd:cpu, built without a registry (docs/deploy.md).
image:
	deploy/image.sh

# libtorch 2.x: Debian 13's libtorch 2.6, CUDA image and the offline GPU check (docs/gpu.md).
.PHONY: test-torch2 image-cuda gpu-bundle

# tsd built and the tensor packages tested against libtorch 2.6 in a Debian 13 container.
test-torch2: gotch
	deploy/torch2-test.sh

# The CUDA image tsd:cuda from Debian 13's libtorch-cuda 2.6, without a registry (docs/deploy.md).
image-cuda:
	deploy/image-cuda.sh

# build/gpu-bundle: Go, the modules and gotch for deploy/gpu-check.sh on a machine without network.
gpu-bundle:
	deploy/gpu-bundle.sh

# Images, docker-compose.yml with 2 then 3 actors, a raft leader and an actor stopped, an
# actor-only node: on the Docker engine of this machine (docs/deploy.md).
e2e:
	deploy/e2e.sh

# deploy/stack.yml on this engine as a one-node Swarm: deploy, scale, a killed task replaced,
# relay, exactly-once; the engine is left as it was found (docs/deploy.md). Not in `make test`.
e2e-swarm:
	deploy/e2e-swarm.sh

# The Helm chart: lint, render every values file, decode strictly into k8s.io/api types, check
# selectors, ports and env names against bin/tsd's flags. Its own Go module (deploy/helm/check).
chart-check: build
	cd deploy/helm/check && $(GO) test ./... && \
		$(GO) run . -chart ../tsd -tsd ../../../bin/tsd -entrypoint ../../entrypoint.sh

# The embedded default: tiny model, warm start, MCTS distillation on loopback, before/after table.
run: build
	bin/tsd demo --dir runs/demo

# The source's comparison at tiny scale: MCTS distillation vs CISPO vs best-of-N, equal budgets.
compare: build
	bin/tsd demo --dir runs/compare --compare

proto:
	@command -v protoc >/dev/null || (sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
		$$sudo apt-get update -qq && $$sudo apt-get install -y -qq protobuf-compiler)
	GOBIN=$(GOBIN)/.tools $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(GOBIN)/.tools $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	PATH=$(GOBIN)/.tools:$$PATH protoc -I proto --go_out=proto --go_opt=paths=source_relative \
		--go-grpc_out=proto --go-grpc_opt=paths=source_relative proto/tsd/v1/*.proto

clean:
	rm -rf bin third_party
