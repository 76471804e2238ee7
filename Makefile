# switchyard: `make demo` runs a local cluster with the proxy in front,
# `make test` runs every test. Both install what they need first.

GO      ?= go
BIN     := bin/switchyard
PKGS    := mariadb-server mariadb-client mariadb-test mariadb-test-data sysbench php-cli php-mysql php-fpm nginx haproxy
FUZZTIME ?= 10s

.PHONY: all deps build test unit integration fuzz run demo demo-failover bench bench-quick mtr clean

all: build

# Debian packages, installed only when a tool is missing so repeated runs are fast.
deps:
	@missing=""; \
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || missing="$$missing mariadb-server"; \
	command -v mariadb >/dev/null 2>&1 || missing="$$missing mariadb-client"; \
	command -v sysbench >/dev/null 2>&1 || missing="$$missing sysbench"; \
	command -v php >/dev/null 2>&1 || missing="$$missing php-cli"; \
	(command -v php >/dev/null 2>&1 && php -m 2>/dev/null | grep -qx mysqli) || missing="$$missing php-mysql"; \
	command -v haproxy >/dev/null 2>&1 || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing="$$missing nginx"; \
	ls /usr/sbin/php-fpm* >/dev/null 2>&1 || command -v php-fpm >/dev/null 2>&1 || missing="$$missing php-fpm"; \
	[ -f /usr/share/mysql/mysql-test/mariadb-test-run.pl ] || missing="$$missing mariadb-test"; \
	[ -d /usr/share/mysql/mysql-test/main ] || missing="$$missing mariadb-test-data"; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(PKGS) >/dev/null; \
	fi

build:
	$(GO) build -o $(BIN) ./cmd/switchyard

# Unit packages run under the race detector; the integration tests run
# against real MariaDB servers and must not be skipped here.
test: deps build
	$(GO) vet ./...
	$(GO) test -count=1 -race -timeout 15m $$($(GO) list ./... | grep -v /integration)
	SWITCHYARD_REQUIRE_INTEGRATION=1 $(GO) test -count=1 -timeout 30m ./integration/...

unit:
	$(GO) test -count=1 -race $$($(GO) list ./... | grep -v /integration)

integration: deps build
	SWITCHYARD_REQUIRE_INTEGRATION=1 $(GO) test -count=1 -timeout 30m -v ./integration/...

# Short runs of every fuzz target; set FUZZTIME for longer ones.
fuzz:
	@for pkg in $$($(GO) list ./...); do \
		for t in $$($(GO) test -list 'Fuzz.*' $$pkg 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$pkg $$t"; $(GO) test -run XXX -fuzz "^$$t$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
		done; \
	done

run: build
	$(BIN) -c switchyard.yaml

# The whole deployment on loopback: MariaDB primary + 2 replicas, two web
# servers (nginx + PHP-FPM), each with its own switchyard, HAProxy on
# 127.0.0.1:8080. Foreground; Ctrl-C stops it all. DEMO_FLAGS passes flags,
# e.g. DEMO_FLAGS=--port-offset=100 (see bin/switchyard-demo -h).
DEMO_FLAGS ?=
demo: deps build
	$(GO) build -o bin/switchyard-demo ./integration/cmd/demo
	bin/switchyard-demo --switchyard $(BIN) $(DEMO_FLAGS)

# While `make demo` runs (in another terminal): kill its MariaDB primary.
demo-failover:
	$(GO) build -o bin/switchyard-demo ./integration/cmd/demo
	bin/switchyard-demo --failover $(DEMO_FLAGS)

# The full matrix (about an hour and a half: see BENCHMARKS.md); rewrites
# BENCHMARKS.md's generated section and bench/charts/*.png. bench-quick
# checks the runner in a couple of minutes and touches neither.
bench: deps build
	./bench/bench.sh --update BENCHMARKS.md

bench-quick: deps build
	./bench/bench.sh --quick

# MariaDB's regression suite (bench/mtr/tests.txt) directly, through
# switchyard and through switchyard with --ps-protocol; results in
# bench/mtr/results, numbers in COMPATIBILITY.md. MTR_ARGS passes options,
# e.g. MTR_ARGS="-m proxy alias kill".
mtr: deps
	./bench/mtr/run $(MTR_ARGS)

clean:
	rm -rf bin
