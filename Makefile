# Disktro: the two commands are `make run` and `make test` (see README.md).
#
# Cargo's target dir follows CARGO_TARGET_DIR when set (CI keeps it outside the clone); the built
# site (wasm bundle, CSS, assets) is always ./target/site.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

TOOLS ?= $(HOME)/.cache/disktro-tools
export DISKTRO_TOOLS := $(TOOLS)
TARGET_DIR := $(or $(CARGO_TARGET_DIR),$(CURDIR)/target)
SERVER_BIN := $(TARGET_DIR)/release/disktro-server
WORKER_BIN := $(TARGET_DIR)/release/disktro-worker
CLI_BIN := $(TARGET_DIR)/release/disktro
SITE_ROOT := $(CURDIR)/target/site
LISTEN ?= 127.0.0.1:3000
# Storage workers the server runs in-process for `make run` (data under ./data/workers).
LOCAL_WORKERS ?= 10
# The tools scripts/setup installs come first on PATH (it writes the list to $(TOOLS)/path).
WITH_TOOLS = PATH="$$(cat $(TOOLS)/path):$$PATH"
WASM_TEST = $(WITH_TOOLS) CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

.PHONY: help setup run build test fmt-check clippy test-native test-wasm test-browser test-units bench bench-scale chaos clean

help:
	@echo "make run    set up what is missing, build, and start the server on http://$(LISTEN)"
	@echo "make test   set up what is missing and run every check and test"
	@echo "make bench  run the benchmarks: BENCHMARKS.md gets the current figures, docs/benchmarks-log.md the run"
	@echo "make bench-scale  how the server's cost grows with its data, 1x to 100x (BENCHMARKS.md, Scale)"
	@echo "make chaos  the failure-domain chaos test with 40 release-built workers (about 10 minutes)"

setup:
	@scripts/setup

## Build the release site (wasm bundle + server).
build: setup
	$(WITH_TOOLS) cargo leptos build --release
	cargo build --release --locked -p disktro-worker -p disktro

run: build
	LEPTOS_SITE_ROOT=$(SITE_ROOT) $(SERVER_BIN) --listen $(LISTEN) --data-dir data --local-workers $(LOCAL_WORKERS)

test: setup fmt-check clippy test-native test-wasm test-browser test-units
	@echo "all checks passed"

fmt-check:
	cargo fmt --all --check

## Clippy once per feature set: native workspace (app as ssr), core with and without simd-accel,
## and the wasm32 side (core, app as hydrate).
clippy:
	cargo clippy --workspace --all-targets --locked -- -D warnings
	cargo clippy -p disktro-core --all-targets --locked -- -D warnings
	cargo clippy -p disktro-core --all-targets --features simd-accel --locked -- -D warnings
	cargo clippy -p disktro-core --lib --tests --target wasm32-unknown-unknown --locked -- -D warnings
	cargo clippy -p disktro-app --lib --target wasm32-unknown-unknown --no-default-features --features hydrate --locked -- -D warnings

## Native tests (and the benchmark regression guard's self-test); core twice so both Reed-Solomon
## back ends are exercised (the golden vectors pin them to identical bytes). Server tests run on
## SQLite and on the PostgreSQL that setup started.
test-native: setup
	python3 scripts/bench-table --self-test
	DISKTRO_TEST_POSTGRES_URL="$$(cat $(TOOLS)/postgres-url)" cargo test --workspace --locked
	cargo test -p disktro-core --locked

## The core tests compiled to wasm32 and run under Node: golden vectors, round trips, tampering.
test-wasm: setup
	$(WASM_TEST) cargo test -p disktro-core --target wasm32-unknown-unknown --tests --locked

## The systemd units of deploy/systemd, verified against this build's binaries.
test-units: build
	DISKTRO_BIN_DIR=$(dir $(SERVER_BIN)) scripts/check-units

## Real Chromium against the real server.
test-browser: build
	DISKTRO_SERVER_BIN=$(SERVER_BIN) DISKTRO_WORKER_BIN=$(WORKER_BIN) DISKTRO_CLI_BIN=$(CLI_BIN) LEPTOS_SITE_ROOT=$(SITE_ROOT) \
		node --test --test-concurrency=1 end2end/tests/

bench: build
	DISKTRO_SERVER_BIN=$(SERVER_BIN) DISKTRO_WORKER_BIN=$(WORKER_BIN) LEPTOS_SITE_ROOT=$(SITE_ROOT) \
		$(WITH_TOOLS) scripts/bench

## The server's metadata at 1x, 10x and 100x of a base network (up to 1,000 workers, 1 million files,
## 10 million shard rows) on SQLite and PostgreSQL: request latencies and background passes.
bench-scale: setup
	$(WITH_TOOLS) scripts/bench-scale

## The chaos test of `make test` at twice the size, on release binaries: 40 worker processes in
## 5 zones, two whole zones stopped, repair, two random waves.
chaos: build
	DISKTRO_SERVER_BIN=$(SERVER_BIN) DISKTRO_WORKER_BIN=$(WORKER_BIN) DISKTRO_CHAOS_WORKERS=40 \
		cargo test --locked -p disktro-server --test durability files_survive_two_lost_zones -- --nocapture

clean:
	cargo clean
