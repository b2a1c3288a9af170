# Shoal's commands. A fresh clone needs only Go (and Node's npx for the spec lint).
GO        ?= go
SPECTRAL  := .ci/spectral/node_modules/.bin/spectral
TESTFLAGS ?=

.PHONY: all generate build run test check vet lint-spec bench clean

all: build

## generate: regenerate api/ from openapi.yaml and ent/ from ent/schema
generate:
	$(GO) generate ./api/... ./ent/...

## build: build bin/shoal
build:
	$(GO) build -o bin/shoal ./cmd/shoal

## run: start the server on embedded SQLite (./data/shoal.db)
run:
	$(GO) run ./cmd/shoal serve

## test: every test, with the race detector, on SQLite and (when available) PostgreSQL
test:
	$(GO) test -race -count=1 -timeout 30m $(TESTFLAGS) ./...

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

## bench: benchmarks, including the large-data ones (SHOAL_BENCH_FULL=1)
bench:
	SHOAL_BENCH_FULL=1 $(GO) test -run '^$$' -bench . -benchtime 1x -timeout 60m ./...

clean:
	rm -rf bin
