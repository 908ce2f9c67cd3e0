# Image to build with docker-build. Building images needs a Docker engine.
IMG ?= keboola-operator:latest
# Version injected into the binary and reported by --version.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
# Git commit recorded in the image label org.opencontainers.image.revision.
REVISION ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)

# Kubernetes release of the control plane that tests run against. The
# binaries are built from source by the modules under hack/controlplane.
K8S_VERSION ?= 1.37.2
LOCALBIN ?= $(CURDIR)/bin
CONTROLPLANE_DIR ?= $(LOCALBIN)/k8s/$(K8S_VERSION)
KUBE_APISERVER ?= $(CONTROLPLANE_DIR)/kube-apiserver
KUBECTL ?= $(CONTROLPLANE_DIR)/kubectl
ETCD ?= $(CONTROLPLANE_DIR)/etcd

CONTROLLER_GEN ?= $(LOCALBIN)/controller-gen
GOLANGCI_LINT ?= $(LOCALBIN)/golangci-lint

# Go test flags; for example GO_TEST_FLAGS="-run TestClient -v".
# Flags of the demo; for example DEMO_FLAGS="--keep-logs --emulator-port 9765".
DEMO_FLAGS ?=
GO_TEST_FLAGS ?=
LDFLAGS := -X main.version=$(VERSION)

# Run recipes with bash, stop at the first failing command and on unset
# variables.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -euc

.PHONY: all
all: build

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "\nUsage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and the RBAC Role from the code markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./..." output:crd:artifacts:config=config/crd/bases output:rbac:artifacts:config=config/rbac

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the DeepCopy methods of the API types.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: verify
verify: manifests generate fmt helm-sync argocd-sync ## Regenerate everything and fail if any generated file changed.
	@if [ -n "$$(git status --porcelain -- api config charts go.mod go.sum '*.go')" ]; then \
		echo "Generated or formatted files are stale. Run 'make manifests generate fmt helm-sync argocd-sync' and commit the result:"; \
		git status --porcelain -- api config charts go.mod go.sum '*.go'; \
		git --no-pager diff --stat; \
		exit 1; \
	fi

.PHONY: fmt
fmt: ## Format the Go code with gofmt.
	gofmt -s -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet.
	go vet ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) lint-packaging ## Run golangci-lint with the settings in .golangci.yml.
	$(GOLANGCI_LINT) run ./...

##@ Build

.PHONY: build
build: manifests generate ## Build the operator and the Storage API emulator into bin/.
	go build -ldflags "$(LDFLAGS)" -o $(LOCALBIN)/keboola-operator .
	go build -o $(LOCALBIN)/keboola-emulator ./cmd/keboola-emulator

.PHONY: run
run: manifests generate ## Run the operator against the cluster of the current kubeconfig.
	go run -ldflags "$(LDFLAGS)" . --leader-elect=false --metrics-bind-address=0

.PHONY: docker-build
docker-build: ## Build the operator image (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) -t $(IMG) .

##@ Test

.PHONY: test
test: controlplane test-packaging ## Run every test: unit, client, emulator, envtest controller suites, packaging, a short chaos soak and the end-to-end test.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" go test -timeout 30m -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: test-e2e
test-e2e: controlplane ## Run only the end-to-end test: the operator binary, kubectl and the emulator.
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" go test -timeout 15m -count=1 -v $(GO_TEST_FLAGS) ./test/e2e/...

.PHONY: demo
demo: controlplane ## Run the operator end to end on a local control plane and the Storage API emulator.
	go run ./hack/demo --assets "$(CONTROLPLANE_DIR)" $(DEMO_FLAGS)

##@ Benchmark

# Flags of hack/bench, for example BENCH_FLAGS="-webhooks 100 -projects 4
# -secrets 2000" for a quick run. "go run ./hack/bench -h" lists them all.
BENCH_FLAGS ?=

.PHONY: bench
bench: controlplane ## Measure convergence, steady-state calls, memory and latency at scale; writes bench-results/latest.json.
	go run ./hack/bench --assets "$(CONTROLPLANE_DIR)" $(BENCH_FLAGS)

##@ Reliability

# Flags of the chaos soak in test/chaos. "make test" runs it with its
# defaults: 12 KeboolaWebhooks in 3 projects on a stack with the webhooks
# endpoint, as many in 2 projects on a stack with only the Notification
# service, 2 kills and 30s of faults.
CHAOS_FLAGS ?= -chaos.webhooks=200 -chaos.projects=5 -chaos.kills=10 -chaos.fault-duration=3m -chaos.timeout=20m

.PHONY: test-chaos
test-chaos: controlplane ## Run the chaos soak at a larger size and the security tests; writes chaos-results/latest.json.
	mkdir -p chaos-results
	KUBEBUILDER_ASSETS="$(CONTROLPLANE_DIR)" go test -timeout 40m -count=1 -v ./test/chaos/ \
		-args $(CHAOS_FLAGS) -chaos.report="$(CURDIR)/chaos-results/latest.json"

##@ Packaging

# The Helm chart. helm-sync copies into it what config/ generates, and
# test-packaging fails when the two differ.
CHART_DIR ?= charts/keboola-operator

.PHONY: helm-sync
helm-sync: manifests ## Copy the CRDs and the manager's RBAC rules from config/ into the Helm chart.
	rm -f $(CHART_DIR)/crds/*.yaml
	cp config/crd/bases/*.yaml $(CHART_DIR)/crds/
	cp config/rbac/role.yaml $(CHART_DIR)/files/role.yaml

.PHONY: argocd-sync
argocd-sync: ## Write config/argocd/argocd-cm.yaml from the Argo CD health checks in config/argocd/*.lua.
	@{ \
		echo "# Generated by \"make argocd-sync\" from health-*.lua in this folder; edit those."; \
		echo "# A strategic merge patch for Argo CD's argocd-cm ConfigMap that adds the"; \
		echo "# health checks of KeboolaProject and KeboolaWebhook. See docs/gitops.md."; \
		echo "apiVersion: v1"; \
		echo "kind: ConfigMap"; \
		echo "metadata:"; \
		echo "  name: argocd-cm"; \
		echo "data:"; \
		for kind in KeboolaProject KeboolaWebhook; do \
			echo "  resource.customizations.health.keboola.dev_$$kind: |"; \
			sed 's/^./    &/' config/argocd/health-$$(echo $$kind | tr A-Z a-z).lua; \
		done; \
	} > config/argocd/argocd-cm.yaml

.PHONY: test-packaging
test-packaging: ## Test the Helm chart, the kstatus results and the Argo CD health checks (module test/packaging).
	cd test/packaging && go vet ./... && go test -count=1 $(GO_TEST_FLAGS) ./...

.PHONY: lint-packaging
lint-packaging: $(GOLANGCI_LINT) ## Run golangci-lint on the module test/packaging.
	cd test/packaging && $(GOLANGCI_LINT) run ./...

##@ Tools

.PHONY: controlplane
controlplane: $(KUBE_APISERVER) $(KUBECTL) $(ETCD) ## Build kube-apiserver, kubectl and etcd from source into bin/k8s/ (once).

$(KUBE_APISERVER) $(KUBECTL) &: hack/controlplane/kubernetes/go.mod
	@echo "Building kube-apiserver and kubectl $(K8S_VERSION) from source; the first build takes several minutes."
	mkdir -p $(CONTROLPLANE_DIR)
	cd hack/controlplane/kubernetes && go build -o $(CONTROLPLANE_DIR)/ k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
	touch $(KUBE_APISERVER) $(KUBECTL)

$(ETCD): hack/controlplane/etcd/go.mod
	@echo "Building etcd from source."
	mkdir -p $(CONTROLPLANE_DIR)
	cd hack/controlplane/etcd && go build -o $(ETCD) go.etcd.io/etcd/server/v3

$(CONTROLLER_GEN): hack/tools/go.mod
	mkdir -p $(LOCALBIN)
	cd hack/tools && go build -o $(CONTROLLER_GEN) sigs.k8s.io/controller-tools/cmd/controller-gen

$(GOLANGCI_LINT): hack/tools/go.mod
	mkdir -p $(LOCALBIN)
	cd hack/tools && go build -o $(GOLANGCI_LINT) github.com/golangci/golangci-lint/v2/cmd/golangci-lint
