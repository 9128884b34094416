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

.PHONY: all build cross test bench fuzz lint demo clean deps deb rpm packages e2e e2e-compare

# Packages: nfpm at a pinned version (v2.46.0 and later need go.digitalxero.dev
# modules, which the Go module proxy refuses), for ARCH amd64 or arm64, into
# bin/pkg/.
NFPM_VERSION := v2.45.2
NFPM      := bin/tools/nfpm-$(NFPM_VERSION)
ARCH      ?= $(shell $(GO) env GOARCH)

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

# The azinit .deb or .rpm for ARCH (make deb ARCH=arm64); see packaging/.
deb rpm: cross $(NFPM)
	@case '$(ARCH)' in amd64|arm64) ;; *) echo "ARCH=$(ARCH): want amd64 or arm64" >&2; exit 1 ;; esac
	@mkdir -p bin/pkg
	PKG_VERSION=$$(packaging/scripts/pkg-version '$(VERSION)') && \
		ARCH=$(ARCH) PKG_VERSION=$$PKG_VERSION $(NFPM) package --config packaging/nfpm.yaml --packager $@ --target bin/pkg/

packages: deb rpm

# Built as upstream builds it, not with this module's build tags; named by
# its version, so that a new NFPM_VERSION installs again.
$(NFPM):
	GOFLAGS= GOBIN=$(abspath bin/tools) $(GO) install github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
	mv bin/tools/nfpm $@

# Boot tests: a Debian image with the .deb installed boots under QEMU against
# the fabric (tests/e2e). Building the image needs root and, once per change
# of hack/e2e/base.sh, the Debian mirror (cached under AZINIT_E2E_CACHE,
# default /var/tmp/azinit-e2e); the boots run in a loopback-only namespace.
# E2EFLAGS adds go test flags (E2EFLAGS='-run TestBootInitramfs').
E2E_DEB   = bin/pkg/azinit_$(shell packaging/scripts/pkg-version '$(VERSION)')_amd64.deb
E2EFLAGS ?=
E2E_TEST  = $(NETNS) $(GO) test -count=1 -timeout 40m -v $(E2EFLAGS) ./tests/e2e/

e2e: build
	$(MAKE) deb ARCH=amd64
	hack/e2e/image.sh bin/e2e/azinit $(E2E_DEB)
	AZINIT_E2E_IMAGE=$(abspath bin/e2e/azinit) AZINIT_BIN=$(abspath bin) $(E2E_TEST) -run '^TestBoot'

# The same scenario provisioned by Debian's WALinuxAgent and by azinit: both
# times to Ready side by side.
e2e-compare: build
	$(MAKE) deb ARCH=amd64
	hack/e2e/image.sh bin/e2e/azinit $(E2E_DEB)
	hack/e2e/image.sh bin/e2e/waagent none waagent
	AZINIT_E2E_IMAGE=$(abspath bin/e2e/azinit) AZINIT_E2E_WAAGENT_IMAGE=$(abspath bin/e2e/waagent) \
		AZINIT_BIN=$(abspath bin) $(E2E_TEST) -run '^TestCompareWAAgent$$'

clean:
	rm -rf bin demo-root demo-work
