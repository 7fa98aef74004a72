# Everything goes through the Bun that npm installs (devDependency `bun`); nothing global is assumed.
BUN := ./node_modules/.bin/bun
# Cross-compile with e.g. `make build TARGET=bun-linux-arm64` (any target `bun build --compile` knows).
TARGET ?= bun-linux-x64
OUT ?= dist/mms-gateway
ARGS ?=

.PHONY: setup run test test-unit test-chaos test-mutation build build-all deb openapi bench typecheck clean

setup: node_modules/.setup-done

node_modules/.setup-done: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

run: setup
	$(BUN) src/main.ts serve $(ARGS)

# sharp's addon is embedded by the bundler, but it loads libvips by RPATH from beside itself on disk:
# libvips goes in as an embedded file, written out and loaded before the addon (src/pipeline/image-codec.ts).
LIBVIPS = $(wildcard node_modules/@img/sharp-libvips-$(subst bun-,,$(1))/lib/libvips-cpp.*)

build: setup
	$(BUN) build --compile --minify --bytecode --target=$(TARGET) src/main.ts src/store/sqlite/checkpoint-worker.ts $(call LIBVIPS,$(TARGET)) --outfile $(OUT)

# Release binaries for every platform we ship. Cross targets need that platform's Bun runtime, which
# `bun build` fetches once from the npm registry (@oven/bun-*) and caches in ~/.bun/install/cache; with
# neither the registry nor the cache this fails for them and only the host target builds.
PLATFORMS ?= linux-x64 linux-arm64 darwin-arm64
build-all: setup
	@for p in $(PLATFORMS); do \
		echo "== $$p"; \
		$(BUN) build --compile --minify --bytecode --target=bun-$$p src/main.ts src/store/sqlite/checkpoint-worker.ts $$(ls node_modules/@img/sharp-libvips-$$p/lib/libvips-cpp.* 2>/dev/null) --outfile dist/mms-gateway-$$p || exit 1; \
	done

# The Debian package of the binary built for TARGET: dist/mms-gateway_<version>_<arch>.deb (dpkg-deb only).
DEB_ARCH = $(or $(if $(filter bun-linux-x64%,$(TARGET)),amd64),$(if $(filter bun-linux-arm64%,$(TARGET)),arm64),$(error no Debian architecture for TARGET=$(TARGET)))
deb: build
	packaging/build-deb.sh $(OUT) $(DEB_ARCH) dist

# docs/openapi.json: what GET /openapi.json serves with the default configuration (a test compares them).
openapi: setup
	$(BUN) -e 'import { defaultConfig } from "./src/config.ts"; import { openApiDocument } from "./src/http/openapi.ts"; import pkg from "./package.json"; const c = defaultConfig(); await Bun.write("docs/openapi.json", JSON.stringify(openApiDocument({ version: pkg.version, limits: c.limits, maxBodyBytes: c.server.max_body_bytes }), null, 2) + "\n");'

typecheck: setup
	./node_modules/.bin/tsc -p .

# The whole suite: unit, integration (real sockets, real SQLite files) and end to end against the
# compiled binary, which is built first.
test: setup build typecheck
	$(BUN) test --timeout 60000

test-unit: setup
	$(BUN) test test/unit

# The long fault runs: more kill -9 rounds and fuzz cases than `make test` takes time for.
# Each scenario prints one summary line (also kept in .tmp/chaos-summary.log; docs/reliability.md quotes it).
# CHAOS_SEED=n changes the seed of every random choice.
test-chaos: setup build
	@mkdir -p .tmp && : > .tmp/chaos-summary.log
	CHAOS_FULL=1 $(BUN) test --timeout 1800000 test/chaos test/fuzz

# StrykerJS over the code that keeps the README's promises (groups in test/mutation/stryker.config.mjs,
# each running only its own test files); then the per-file score table docs/reliability.md publishes.
# Not part of `make test`: about an hour on 2 cores. MUTATION_GROUPS="store" runs a subset.
MUTATION_GROUPS ?= domain store postgres writer outbox pipeline operator classification smpp-receipt in-doubt
test-mutation: setup
	@mkdir -p .tmp/mutation
	@for g in $(MUTATION_GROUPS); do \
		MUTATION_GROUP=$$g ./node_modules/.bin/stryker run test/mutation/stryker.config.mjs || exit 1; \
	done
	$(BUN) test/mutation/score.ts

bench: setup build
	$(BUN) bench/run.ts

clean:
	rm -rf dist data .tmp
