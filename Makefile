# Carapace build and test entry points.
#   make        builds bin/runsc (static, no cgo)
#   make test   installs missing Debian packages, then checks formatting, vets
#               and runs every test (unit, fuzz seeds, syscall suite, e2e)
#   make bench  runs the workloads natively, under runc and under runsc
#   make gobench runs the Go micro-benchmarks

# Go lives in /usr/local/go on Debian machines set up for Go.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X carapace.dev/carapace/runsc/version.Version=$(VERSION)
# Whole-suite bound; CI allows 90 minutes and we aim to stay far below.
TEST_TIMEOUT ?= 25m

.PHONY: all runsc test deps fmt vet unit bench gobench clean

all: runsc

runsc:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/runsc ./runsc

deps:
	./tools/install-deps.sh

fmt:
	@unformatted=$$(gofmt -l $$(git ls-files -co --exclude-standard '*.go')); \
	if [ -n "$$unformatted" ]; then echo "gofmt needed on:"; echo "$$unformatted"; exit 1; fi

vet:
	$(GO) vet ./...

unit: runsc
	$(GO) test -timeout $(TEST_TIMEOUT) ./...

test: deps fmt vet unit

# The side-by-side table of native, runc and runsc (test/benchmarks).
bench: deps runsc
	$(GO) run ./test/benchmarks/cmd/bench

# The Go micro-benchmarks of every package.
gobench:
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

clean:
	rm -rf bin test/syscalls/build
