# Shoal's commands. A fresh clone needs only Go (and Node's npx for the spec lint).
GO        ?= go
SPECTRAL  := .ci/spectral/node_modules/.bin/spectral
TESTFLAGS ?=

.PHONY: all generate build run test check vet lint-spec bench bench-peer clean docs-vendor example-ts

all: build

## generate: regenerate api/ from openapi.yaml and ent/ from ent/schema
generate:
	$(GO) generate ./api/... ./ent/...

## build: build bin/shoal
build:
	$(GO) build -o bin/shoal ./cmd/shoal

## run: build bin/shoal, then start the server on embedded SQLite (./data/shoal.db)
run:
	@echo "make run: building bin/shoal first (the first build compiles every dependency and takes minutes on a small machine; later ones take seconds)…"
	@$(GO) build -o bin/shoal ./cmd/shoal
	@echo "make run: built; starting bin/shoal serve (its log says where the database is, the address, and how to create the first admin)"
	@./bin/shoal serve

## test: every test, with the race detector, on SQLite and (when available) PostgreSQL
test:
	$(GO) test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

## example-ts: the TypeScript client example (examples/typescript) against a live server; needs Node 20 and npm
example-ts:
	./examples/typescript/run.sh

## check: generated code in step, vet, and the OpenAPI lint
check: generate
	git diff --exit-code -- api ent
	$(GO) vet ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || (gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1)
	$(MAKE) lint-spec

## lint-spec: lint openapi.yaml with pinned spectral + OWASP ruleset
lint-spec: $(SPECTRAL)
	$(SPECTRAL) lint --fail-severity=error -r .ci/spectral/.spectral.yaml openapi.yaml

$(SPECTRAL): .ci/spectral/package.json .ci/spectral/package-lock.json
	npm ci --prefix .ci/spectral --no-audit --no-fund --loglevel=error
	@touch $@

## bench: benchmarks, including the large-data ones (SHOAL_BENCH_FULL=1), then bench-peer
bench:
	SHOAL_BENCH_FULL=1 $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...
	$(MAKE) bench-peer

# The peer benchmark's knobs; a smoke run:
#   make bench-peer PEER_DURATION=3s PEER_ROWS=2000 PEER_RUNS=1
PEER_DURATION    ?= 15s
PEER_CONNECTIONS ?= 50
PEER_THREADS     ?= 2
PEER_ROWS        ?= 50000
PEER_RUNS        ?= 2
PEER_USERS       ?= 16
PEER_FLAGS       ?=

## bench-peer: Shoal (SQLite, PostgreSQL) next to PocketBase under the same wrk load; needs wrk, network for the first build
bench-peer:
	@command -v wrk >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO=sudo; else exit 0; fi; \
	  echo "installing wrk (Debian package)"; \
	  $$SUDO apt-get install -y wrk || { $$SUDO apt-get update && $$SUDO apt-get install -y wrk; }; } || true
	@command -v wrk >/dev/null 2>&1 || { echo "bench-peer needs wrk: install the Debian package as root: apt-get install -y wrk"; exit 1; }
	$(GO) run ./bench/peer -duration $(PEER_DURATION) -connections $(PEER_CONNECTIONS) -threads $(PEER_THREADS) \
	  -rows $(PEER_ROWS) -runs $(PEER_RUNS) -users $(PEER_USERS) $(PEER_FLAGS)

clean:
	rm -rf bin

## docs-vendor: refresh the embedded API reference renderer (Redoc) from npm;
## the version is pinned in internal/httpapi/docs.go (redocVersion)
REDOC_VERSION := $(shell sed -n 's/^const redocVersion = "\(.*\)"/\1/p' internal/httpapi/docs.go)
docs-vendor:
	rm -rf .cache/redoc && mkdir -p .cache/redoc
	cd .cache/redoc && npm pack --silent redoc@$(REDOC_VERSION) && tar xzf redoc-$(REDOC_VERSION).tgz
	cp .cache/redoc/package/bundles/redoc.standalone.js .cache/redoc/package/bundles/redoc.standalone.js.LICENSE.txt internal/httpapi/docsui/
	cp .cache/redoc/package/LICENSE internal/httpapi/docsui/LICENSE.redoc
	cd internal/httpapi/docsui && sha256sum redoc.standalone.js | cut -d' ' -f1 > redoc.standalone.js.sha256
	rm -rf .cache/redoc
