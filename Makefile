# Everything goes through the Bun that npm installs (devDependency `bun`); nothing global is assumed.
BUN := ./node_modules/.bin/bun
# Cross-compile with e.g. `make build TARGET=bun-linux-arm64` (any target `bun build --compile` knows).
TARGET ?= bun-linux-x64
OUT ?= dist/mms-gateway
ARGS ?=

.PHONY: setup run test test-unit test-chaos build bench typecheck clean

setup: node_modules/.setup-done

node_modules/.setup-done: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

run: setup
	$(BUN) src/main.ts serve $(ARGS)

build: setup
	$(BUN) build --compile --minify --bytecode --target=$(TARGET) src/main.ts --outfile $(OUT)

typecheck: setup
	./node_modules/.bin/tsc -p .

# The whole suite: unit, integration (real sockets, real SQLite files) and end to end against the
# compiled binary, which is built first.
test: setup build typecheck
	$(BUN) test --timeout 60000

test-unit: setup
	$(BUN) test test/unit

# The long fault runs: more kill -9 rounds and fuzz cases than `make test` takes time for.
test-chaos: setup build
	CHAOS_FULL=1 $(BUN) test --timeout 1800000 test/chaos test/fuzz

bench: setup build
	$(BUN) bench/run.ts

clean:
	rm -rf dist data .tmp
