# otelcol-k8ssec: see README.md. Targets: build run test generate check-bpf bench lint clean.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := build

GO          ?= go
GOBIN_DIR   ?= $(HOME)/go/bin
# ocb, pinned with the collector modules in builder-config.yaml: move them together.
OCB_VERSION := v0.145.0
OCB         := $(GOBIN_DIR)/builder
# staticcheck 2026.2.2, for make lint.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(GOBIN_DIR)/staticcheck
BUILD_DIR   := _build
BINARY      := $(BUILD_DIR)/otelcol-k8ssec
# The slim node agent (distributions/otelcol-k8ssec-agent): what the DaemonSet runs.
AGENT_BINARY := $(BUILD_DIR)/otelcol-k8ssec-agent
AGENT_CONFIG := distributions/otelcol-k8ssec-agent/builder-config.yaml
RUN_CONFIG  ?= k8ssec:standalone
TEST_TIMEOUT ?= 45m

# What the binary is built from: non-test Go sources, the module files and whatever
# go:embed may pull in (YAML configs and rules, bpf2go objects). Tests, testdata and
# generated/output directories do not trigger a rebuild.
BUILD_INPUTS := $(shell find . \
	\( -path ./.git -o -path ./$(BUILD_DIR) -o -path ./_data -o -path ./.cache -o -path ./.ci -o -name testdata \) -prune -o \
	-type f \( -name '*.go' -o -name go.mod -o -name go.sum -o -name '*.yaml' -o -name '*.yml' -o -name '*.o' \) \
	-not -name '*_test.go' -print)

# Go files gofmt checks: everything but ocb's generated module.
GO_FILES = $(shell find . \( -path ./.git -o -path ./$(BUILD_DIR) -o -path ./.cache \) -prune -o -type f -name '*.go' -print)

.PHONY: build run test test-deps generate check-bpf bench lint clean ocb staticcheck k8s-binaries test-kernel secrules node

build: $(BINARY) $(AGENT_BINARY) $(BUILD_DIR)/secrules

# secrules: validate and test rule files (see rules/README.md).
secrules: $(BUILD_DIR)/secrules
$(BUILD_DIR)/secrules: $(BUILD_INPUTS)
	$(GO) build -o $@ ./cmd/secrules

# Installs the pinned ocb into $(GOBIN_DIR) when it is missing or another version.
ocb:
	@if [ "$$($(OCB) version 2>&1)" != "ocb version $(OCB_VERSION)" ]; then \
		echo "installing ocb $(OCB_VERSION) into $(GOBIN_DIR)"; \
		GOBIN="$(GOBIN_DIR)" $(GO) install go.opentelemetry.io/collector/cmd/builder@$(OCB_VERSION); \
	fi

# ocb resolves builder-config.yaml's paths against the directory it runs in: the root.
$(BINARY): builder-config.yaml $(BUILD_INPUTS) | ocb
	$(OCB) --config builder-config.yaml
	@touch $@

# ocb writes its module and binary to _build/agent (its own go.mod, apart from the
# full build's); the binary is linked beside the full one.
$(AGENT_BINARY): $(AGENT_CONFIG) $(BUILD_INPUTS) | ocb
	$(OCB) --config $(AGENT_CONFIG)
	ln -f $(BUILD_DIR)/agent/otelcol-k8ssec-agent $@

run: $(BINARY)
	$(BINARY) --config $(RUN_CONFIG)

# etcd and kube-apiserver for the integration tests, cached in
# $${OTELCOL_K8SSEC_CACHE:-~/.cache/otelcol-k8ssec} (~15 min the first time).
k8s-binaries:
	hack/build-k8s-binaries.sh >/dev/null

# The kernels the qemu tests boot (Debian's newest 6.12: BPF LSM and the hooks; 6.1: the
# hooks), cached beside them.
test-kernel:
	hack/fetch-test-kernel.sh 6.12 >/dev/null
	hack/fetch-test-kernel.sh 6.1 >/dev/null

# The tests need root (BPF programs, cgroups) and Debian's nginx, openssl, qemu and
# busybox, installed here when missing. Not root: stop now, with the apt-get line for
# whatever is missing, rather than skip the kernel tests.
test-deps:
	@if [ "$$(id -u)" != 0 ]; then \
		hack/install-deps.sh test || true; \
		echo "make test needs root: the tests load BPF programs, make cgroups and run etcd, kube-apiserver, nginx and qemu (sudo make test)" >&2; \
		exit 1; \
	fi
	@hack/install-deps.sh test

# The integration tests need root, the k8s binaries and the collector binary (e2e).
# -count=1: they talk to processes and files go test cannot see, so never reuse results.
test: test-deps k8s-binaries test-kernel $(BINARY) $(AGENT_BINARY)
	assets="$$(hack/build-k8s-binaries.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -timeout $(TEST_TIMEOUT) ./...

# A single-node Kubernetes cluster on this machine with otelcol-k8ssec deployed from the
# shipped manifests, held until Ctrl-C, for a person to try it (docs/try-on-a-node.md):
# the end-to-end test's deployment (distributions/otelcol-k8ssec/nodee2e), without its
# attacks. Root.
node: test-deps k8s-binaries $(BINARY) $(AGENT_BINARY)
	assets="$$(hack/build-k8s-binaries.sh)"; \
	KUBEBUILDER_ASSETS="$$assets" $(GO) test -count=1 -v -timeout 0 -run 'TestDeployedOnANode$$' ./distributions/otelcol-k8ssec/nodee2e -args -hold

# mdatagen for every component, bpf2go for the eBPF objects (committed, so that
# building and testing need neither). bpf2go needs Debian's clang, llvm and libbpf-dev.
generate:
	@hack/install-deps.sh generate
	$(GO) generate ./...

# The committed BPF objects are what bpf/*.c compiles to (CI runs this).
check-bpf:
	@hack/install-deps.sh generate
	hack/check-bpf-objects.sh

# Per core: GOMAXPROCS=1, five runs to see the spread on a shared machine.
bench:
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1 -count 5 ./...

# Installs the pinned staticcheck into $(GOBIN_DIR) when it is missing or another version.
staticcheck:
	@if ! $(STATICCHECK) -version 2>/dev/null | grep -qF "($(STATICCHECK_VERSION:v%=%))"; then \
		echo "installing staticcheck $(STATICCHECK_VERSION) into $(GOBIN_DIR)"; \
		GOBIN="$(GOBIN_DIR)" $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION); \
	fi

lint: staticcheck
	@unformatted="$$(gofmt -l $(GO_FILES))"; \
	if [ -n "$$unformatted" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...
	$(GO) run ./hack/doclinks   # every relative link in README.md, rules/README.md and docs/*.md resolves

clean:
	rm -rf $(BUILD_DIR)
