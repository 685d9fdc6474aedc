# XTransport — the two commands: `make demo` and `make test`. Both install what they need.
SWIFT ?= swift
RELEASE_BIN := .build/release/xt
DEBUG_BIN := .build/debug/xt

.PHONY: deps build release demo demo-transport test test-network fuzz bench clean

deps:
	@bash scripts/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product xt

# The whole system on loopback until Ctrl-C: the recorder with its web UI (URL and login
# printed), two synthetic camera agents with scripted motion and sound, and an alarm subscriber.
demo: release
	@bash scripts/demo.sh $(RELEASE_BIN)

# The transport on its own: a listener and two peers exchange messages and a file (link
# stats, throughput); then a short recording, checked and exported.
demo-transport: release
	@bash scripts/demo-transport.sh $(RELEASE_BIN)

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
