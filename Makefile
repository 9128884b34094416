# azinit: `make demo` runs the main job against the embedded fabric; `make test`
# runs the whole suite isolated from the network. See README.md.

GO        ?= go
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X github.com/azinit/azinit/internal/version.Version=$(VERSION)
BUILD     := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'
BINARIES  := $(notdir $(wildcard cmd/*))
NETNS     := hack/netns
FUZZTIME  ?= 30s
BENCHTIME ?= 1s
BENCHCOUNT ?= 6
TESTFLAGS ?=

export CGO_ENABLED := 0
# Leave out code azinit never runs: urfave/cli's man-page generator and
# net/http's HTTP/2 (platform endpoints speak HTTP/1.1). Exported so that
# tests building the binaries build them the same way.
export GOFLAGS := $(GOFLAGS) -tags=urfave_cli_no_docs,nethttpomithttp2

.PHONY: all build cross test bench fuzz lint demo clean deps

all: build

deps:
	$(GO) mod download

# Static binaries for this machine in bin/.
build: deps
	$(BUILD) -o bin/ ./cmd/...

# Static binaries for both supported architectures.
cross: deps
	GOOS=linux GOARCH=amd64 $(BUILD) -o bin/linux-amd64/ ./cmd/...
	GOOS=linux GOARCH=arm64 $(BUILD) -o bin/linux-arm64/ ./cmd/...

# The whole suite, inside a network namespace that has only loopback.
test: build
	GOARCH=arm64 $(GO) vet ./...
	$(NETNS) $(GO) test -timeout 15m $(TESTFLAGS) ./...

# Results also go to bin/bench.txt, for benchstat.
bench: build
	$(NETNS) $(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) -count $(BENCHCOUNT) ./... | tee bin/bench.txt

# Every fuzz target for FUZZTIME each (make fuzz FUZZTIME=5m).
fuzz: deps
	@set -e; for pkg in $$($(GO) list ./...); do \
		for target in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$target ($(FUZZTIME))"; \
			$(NETNS) $(GO) test -run '^$$' -fuzz "^$$target$$" -fuzztime $(FUZZTIME) -fuzzminimizetime 5s $$pkg; \
		done; \
	done

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOARCH=arm64 $(GO) vet ./...

demo: build
	$(NETNS) hack/demo

clean:
	rm -rf bin demo-root demo-work
