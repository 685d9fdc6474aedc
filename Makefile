# XTransport — the two commands: `make demo` and `make test`. Both install what they need.
SWIFT ?= swift
RELEASE_BIN := .build/release/xt
DEBUG_BIN := .build/debug/xt

.PHONY: deps build release demo test test-network fuzz bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product xt

# A listener and two peers on loopback exchange messages and a file (link stats, throughput);
# then a recorder and two synthetic camera agents, the recording checked and exported.
demo: release
	@bash scripts/demo.sh $(RELEASE_BIN)

# Unit, simulator and loopback tests; network-namespace tests run when root (skipped otherwise).
test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --disable-xctest

fuzz: deps
	@bash scripts/fuzz.sh

bench: release
	@bash scripts/bench.sh $(RELEASE_BIN)

clean:
	rm -rf .build demo-data bench-out fuzz-out
