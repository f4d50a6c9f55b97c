# xenballoond — the commands a newcomer and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the build and the tests need: libxenstore/libxenctrl and their headers (FFI and
# the C guest tools), the real xenstore-* CLI tools and Xen's own test-xenstore (conformance and
# interop tests against our xenstore server); libc6-dev for the C guest tools (headers, and libc.a
# for their static build: apt does not pull it in with --no-install-recommends).
APT_PACKAGES := libxenstore4 xenstore-utils libxen-dev xen-utils-4.17 gcc make libc6-dev

NPM_STAMP := node_modules/.xenballoond-installed

# The one version (package.json's): compiled into the C tools and the bundles, named in the .deb.
VERSION := $(shell sed -n 's/^  "version": "\(.*\)",$$/\1/p' package.json)

.PHONY: help setup setup-apt build build-ts build-native build-native-static build-native-sanitize test test-native-sanitize lint clean bench bench-core bench-xenstore bench-xenstored setup-lab lab-images lab-smoke lab-test

help:
	@echo "make demo    run the embedded simulated Xen host with the real daemon and watch it balance"
	@echo "make test    install what is missing, build, and run every test"
	@echo "make build   compile TypeScript to dist/ and native/ to build/bin/"
	@echo "make lint    type-check sources and tests, and run eslint"
	@echo "make setup   install missing Debian packages (apt-get, needs root) and npm packages"
	@echo "make bench   run every simulator scenario with xenballoond and its peers; tables in docs/benchmarks.md (BENCH_SEEDS=1-5: five seeds)"
	@echo "make bench-core  time the decision core per step for 10..10,000 domains (prints numbers)"
	@echo "make bench-daemon  the real daemon with 100 and 1,000 simulated domains: latency, CPU at rest, RSS"
	@echo "make install  install on a dom0 under /opt/xenballoond with the systemd unit (docs/operations.md)"
	@echo "make bench-xenstore  reads/s, writes/s, watch latency of the libxenstore binding (prints numbers)"
	@echo "make bench-watch  CPU of watch events (+ reading the changed key) at the daemon's rate at rest (prints numbers)"
	@echo "make bench-xenstored  print requests/s and watch latency of our xenstore server"
	@echo "make lab-smoke  boot real Xen + dom0 + 2 PV guests under QEMU and check the libxenctrl binding (docs/lab.md)"
	@echo "make lab-test   the real xenballoond on real Xen under QEMU: overcommitted PV guests, eatmem, a destroy; timeline + chart (docs/lab.md)"

setup: setup-apt $(NPM_STAMP)

# Idempotent: asks dpkg what is missing each time (cheap) and installs only that.
setup-apt:
	@missing=$$(for p in $(APT_PACKAGES); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || echo "$$p"; \
	  done | tr '\n' ' '); \
	if [ -n "$${missing// }" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make setup: missing Debian packages: $$missing— run 'sudo make setup' (or apt-get install them)" >&2; exit 1; \
	  fi; \
	  echo "make setup: installing $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

build: setup build-ts build-native

build-ts: $(NPM_STAMP)
	npx tsc -p tsconfig.json

# The guest tools (native/): C11, warnings are errors. They link libxenstore (which pulls in
# libxentoolcore) and libc only, so a guest initrd needs just those libraries and ld-linux;
# build-native-static makes binaries that need nothing at all.
NATIVE_CFLAGS := -std=c11 -O2 -g -Wall -Wextra -Werror -Wshadow -Wformat=2 -D_FORTIFY_SOURCE=2 -fstack-protector-strong -DXB_VERSION='"$(VERSION)"'
NATIVE_LIB_SRC := native/common.c native/stats.c native/selfballoon.c
NATIVE_HDR := $(wildcard native/*.h)
REPORT_SRC := native/xenballoon-report.c $(NATIVE_LIB_SRC)
EATMEM_SRC := native/eatmem.c native/common.c
NATIVE_STATIC_LIBS := -Wl,--start-group -lxenstore -lxentoolcore -Wl,--end-group -lpthread

# Static builds come along (cheap), so tests can check they run with no libraries at all.
build-native: build/bin/xenballoon-report build/bin/eatmem build-native-static build/lib/libxbdshim.so

# The binding's watch event shim (src/xen/xenstore-shim.ts): poll + xs_check_watch + xs_read of
# the changed node in one call on a libuv worker. The daemon uses it when present.
build/lib/libxbdshim.so: native/xbdshim.c
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -fPIC -shared -o $@ native/xbdshim.c -lxenstore

build/bin/xenballoon-report: $(REPORT_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -o $@ $(REPORT_SRC) -lxenstore

build/bin/eatmem: $(EATMEM_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -o $@ $(EATMEM_SRC) -lxenstore

# Self-contained binaries for a busybox guest initrd: no shared libraries, no loader.
build-native-static: build/static/xenballoon-report build/static/eatmem

build/static/xenballoon-report: $(REPORT_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -static -s -o $@ $(REPORT_SRC) $(NATIVE_STATIC_LIBS)

build/static/eatmem: $(EATMEM_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(NATIVE_CFLAGS) -static -s -o $@ $(EATMEM_SRC) $(NATIVE_STATIC_LIBS)

# The C tools under AddressSanitizer and UBSan, run over every /proc fixture and a short eatmem.
SANITIZE_FLAGS := -std=c11 -O1 -g -Wall -Wextra -Werror -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all -DXB_VERSION='"$(VERSION)"'

build/sanitize/xenballoon-report: $(REPORT_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(SANITIZE_FLAGS) -o $@ $(REPORT_SRC) -lxenstore

build/sanitize/eatmem: $(EATMEM_SRC) $(NATIVE_HDR)
	@mkdir -p $(@D)
	$(CC) $(SANITIZE_FLAGS) -o $@ $(EATMEM_SRC) -lxenstore

build-native-sanitize: build/sanitize/xenballoon-report build/sanitize/eatmem

test-native-sanitize: build-native-sanitize
	@set -e; for d in test/fixtures/proc/*/; do \
	  echo "sanitize: xenballoon-report --once --print --proc $$d"; \
	  build/sanitize/xenballoon-report --once --print --proc "$$d" --sys "$$d/sys" >/dev/null; \
	done
	build/sanitize/eatmem --max 8M --sleep-max 0 --rounds 3 --seed 1 >/dev/null
	@echo "sanitize: clean"

# The sanitizer builds are for test/native/sanitize.test.ts (mutated /proc input under ASan/UBSan).
test: build build-native-sanitize
	npx vitest run

# A benchmark, not a test: every scenario with xenballoond and every peer (simulate --compare
# peers), recorded in docs/benchmarks.md; prints numbers, asserts nothing. BENCH_SEEDS=1-5 runs
# five seeds (10-15 minutes here), with a per-seed summary and the goals checked on each.
BENCH_SEEDS ?= 1
bench: build
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/simulate.js --seeds $(BENCH_SEEDS)

# A benchmark, not a test: prints numbers (see docs/benchmarks.md), asserts nothing.
bench-xenstore: build
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/xenstore.js

# A benchmark, not a test: CPU per watch event at 10 events/s over 100 watches (docs/benchmarks.md).
.PHONY: bench-watch
bench-watch: build
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/watch.js

lint: $(NPM_STAMP)
	npx tsc -p tsconfig.check.json
	npx eslint .

# A benchmark, not a test: prints the core's time per step (docs/benchmarks.md keeps results).
bench-core: build-ts
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/core.js

clean:
	rm -rf dist build

# Speed of our xenstore server (prints numbers, asserts nothing; BENCH_MS=… per measurement).
bench-xenstored: build-ts
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/xenstored.js

# Install on a dom0 (docs/operations.md): the built program under $(PREFIX) with only its
# runtime npm packages, the two commands in /usr/local, the systemd unit, and (only if absent)
# /etc/xenballoond/policy.yaml and /etc/default/xenballoond. DESTDIR stages it elsewhere.
PREFIX ?= /opt/xenballoond
DESTDIR ?=
SBINDIR ?= /usr/local/sbin
BINDIR ?= /usr/local/bin
UNITDIR ?= /etc/systemd/system

# (its own .PHONY line, so that branches adding targets do not conflict on one long line)
.PHONY: install
install: build
	install -d $(DESTDIR)$(PREFIX) $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)/etc/xenballoond/policy.d $(DESTDIR)/etc/default
	rm -rf $(DESTDIR)$(PREFIX)/dist $(DESTDIR)$(PREFIX)/node_modules
	cp -R dist config package.json package-lock.json $(DESTDIR)$(PREFIX)/
	if [ -d build/bin ]; then install -d $(DESTDIR)$(PREFIX)/build && cp -R build/bin $(DESTDIR)$(PREFIX)/build/; fi
	if [ -d build/lib ]; then install -d $(DESTDIR)$(PREFIX)/build && cp -R build/lib $(DESTDIR)$(PREFIX)/build/; fi
	npm ls --omit=dev --parseable --all | tail -n +2 | sed "s|^$(CURDIR)/||" | \
	  while read -r d; do install -d "$(DESTDIR)$(PREFIX)/$$d" && cp -R "$$d/." "$(DESTDIR)$(PREFIX)/$$d/"; done
	chmod 755 $(DESTDIR)$(PREFIX)/dist/cli/xenballoond.js $(DESTDIR)$(PREFIX)/dist/cli/xenballoonctl.js
	ln -sfn $(PREFIX)/dist/cli/xenballoond.js $(DESTDIR)$(SBINDIR)/xenballoond
	ln -sfn $(PREFIX)/dist/cli/xenballoonctl.js $(DESTDIR)$(BINDIR)/xenballoonctl
	install -m 644 config/xenballoond.service $(DESTDIR)$(UNITDIR)/xenballoond.service
	[ -e $(DESTDIR)/etc/xenballoond/policy.yaml ] || install -m 644 config/policy.yaml $(DESTDIR)/etc/xenballoond/policy.yaml
	[ -e $(DESTDIR)/etc/default/xenballoond ] || install -m 644 config/xenballoond.default $(DESTDIR)/etc/default/xenballoond
	@echo "installed under $(DESTDIR)$(PREFIX); next: systemctl daemon-reload && systemctl enable --now xenballoond"

# The paper's experiment on a simulated host with the real daemon, in about a minute.
.PHONY: demo
demo: build
	node dist/demo/run.js

# A benchmark, not a test: the real daemon managing 100 and 1,000 simulated domains (latency
# from a guest's report to its target, CPU at rest, RSS). Results in docs/benchmarks.md.
.PHONY: bench-daemon
bench-daemon: build
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/daemon.js

# --- The real-Xen lab (docs/lab.md): Xen 4.17 + dom0 + PV guests under QEMU, from Debian packages.
setup-lab:
	test/lab/setup.sh

lab-images: setup-lab
	test/lab/build-images.sh

# The scenario runs in dom0 against the built dist/ and, when present, build/bin guest tools.
lab-smoke: build setup-lab
	test/lab/run.sh --timeout 900 test/lab/scenarios/smoke.sh

# The real daemon on real Xen (test/lab/scenarios/daemon.sh). Self-sufficient on a fresh machine:
# builds, installs the lab's packages, builds the images. The chart is drawn here (node is slow in
# the emulated dom0) from whatever timeline the run left, also when it failed.
LAB_TEST_TIMEOUT ?= 600
lab-test: build setup-lab
	@rc=0; test/lab/run.sh --timeout $(LAB_TEST_TIMEOUT) --memory 1280 test/lab/scenarios/daemon.sh || rc=$$?; \
	  timeout 120 node test/lab/chart.mjs build/lab/results || true; \
	  exit $$rc
