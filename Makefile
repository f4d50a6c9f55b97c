# xenballoond — the commands a newcomer and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the build and the tests need: libxenstore/libxenctrl and their headers (FFI and
# the C guest tools), the real xenstore-* CLI tools and Xen's own test-xenstore (conformance and
# interop tests against our xenstore server); libc6-dev for the C guest tools (headers, and libc.a
# for their static build: apt does not pull it in with --no-install-recommends).
APT_PACKAGES := libxenstore4 xenstore-utils libxen-dev xen-utils-4.17 gcc make libc6-dev pandoc
# pandoc turns docs/man/*.md into the man pages. `make deb` also needs lintian (checked on every
# build) and `make deb-check` debootstrap (a fresh Debian 12 root to install the package into).
DEB_APT_PACKAGES := lintian debootstrap

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
	@echo "make bench-start  the daemon's start to its first step, dist/ vs the shipped bundle (prints numbers)"
	@echo "make bench-core  time the decision core per step for 10..10,000 domains (prints numbers)"
	@echo "make bench-daemon  the real daemon with 100 and 1,000 simulated domains: latency, CPU at rest, RSS"
	@echo "make deb     the Debian package build/deb/xenballoond_VERSION_amd64.deb, lintian-checked (make deb-check: install it in a fresh Debian 12 root)"
	@echo "make install  install on a dom0 under /opt/xenballoond with the systemd unit, without apt (docs/operations.md); make uninstall"
	@echo "make bench-xenstore  reads/s, writes/s, watch latency of the libxenstore binding (prints numbers)"
	@echo "make bench-watch  CPU of watch events (+ reading the changed key) at the daemon's rate at rest (prints numbers)"
	@echo "make bench-flood  the real daemon while a guest floods xenstore: honest report ages, RSS, catch-up (prints numbers)"
	@echo "make bench-xenstored  print requests/s and watch latency of our xenstore server"
	@echo "make lab-smoke  boot real Xen + dom0 + 2 PV guests under QEMU and check the libxenctrl binding (docs/lab.md)"
	@echo "make lab-test   the real xenballoond on real Xen under QEMU: overcommitted PV guests, eatmem, a destroy; timeline + chart (docs/lab.md)"

setup: setup-apt $(NPM_STAMP)

# Idempotent: asks dpkg what is missing each time (cheap) and installs only that.
# $(call apt_ensure,PACKAGES,TARGET)
define apt_ensure
	@missing=$$(for p in $(1); do \
	    dpkg-query -W -f='$${Status}\n' "$$p" 2>/dev/null | grep -q '^install ok installed$$' || echo "$$p"; \
	  done | tr '\n' ' '); \
	if [ -n "$${missing// }" ]; then \
	  if [ "$$(id -u)" != 0 ]; then \
	    echo "make $(2): missing Debian packages: $$missing— run 'sudo make $(2)' (or apt-get install them)" >&2; exit 1; \
	  fi; \
	  echo "make $(2): installing $$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
endef

setup-apt:
	$(call apt_ensure,$(APT_PACKAGES),setup)

.PHONY: setup-deb
setup-deb: setup
	$(call apt_ensure,$(DEB_APT_PACKAGES),setup-deb)

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

# A benchmark, not a test: the real daemon while one simulated guest floods xenstore (honest
# report ages, daemon RSS, catch-up time; docs/benchmarks.md). Prints numbers, asserts nothing.
.PHONY: bench-flood
bench-flood: build
	npx tsc -p tsconfig.bench.json
	node build/bench/bench/flood.js

# --- What ships: bundles, man pages, the unit; `make install` and `make deb` (docs/operations.md).
#
# The daemon and the CLI are bundled by esbuild into one ES module each (build/bundle/), for
# Debian 12's nodejs 18 (target node18): a start reads 2 files instead of ~300. Two modules stay
# outside, resolved at run time from PREFIX/node_modules: koffi's native module
# (@koromix/koffi-linux-x64, linux_x64 only) and pino-pretty (loaded only for a terminal;
# bundled into one file of its own).
TS_SRC := $(shell find src -name '*.ts')
BUNDLES := build/bundle/xenballoond.mjs build/bundle/xenballoonctl.mjs
ESBUILD_FLAGS := --bundle --platform=node --format=esm --target=node18 --log-level=warning \
  --out-extension:.js=.mjs '--define:__XENBALLOOND_VERSION__="$(VERSION)"' \
  "--banner:js=import { createRequire as __xbdRequire } from 'node:module'; const require = __xbdRequire(import.meta.url);"
KOFFI_NATIVE := node_modules/@koromix/koffi-linux-x64
RUNTIME_MODULES := build/runtime/node_modules

.PHONY: bundle man
bundle: $(BUNDLES) $(RUNTIME_MODULES)/.stamp

$(BUNDLES) &: $(NPM_STAMP) $(TS_SRC) package.json
	npx esbuild src/cli/xenballoond.ts src/cli/xenballoonctl.ts $(ESBUILD_FLAGS) --outdir=build/bundle --metafile=build/bundle/meta.json

$(RUNTIME_MODULES)/.stamp: $(NPM_STAMP)
	rm -rf $(RUNTIME_MODULES) && install -d $(RUNTIME_MODULES)/@koromix/koffi-linux-x64/linux_x64 $(RUNTIME_MODULES)/pino-pretty
	install -m 644 $(KOFFI_NATIVE)/package.json $(KOFFI_NATIVE)/index.js $(RUNTIME_MODULES)/@koromix/koffi-linux-x64/
	install -m 644 $(KOFFI_NATIVE)/linux_x64/koffi.node $(RUNTIME_MODULES)/@koromix/koffi-linux-x64/linux_x64/
	npx esbuild node_modules/pino-pretty/index.js --bundle --platform=node --format=cjs --target=node18 --log-level=warning \
	  --outfile=$(RUNTIME_MODULES)/pino-pretty/index.js --metafile=build/runtime/pino-pretty-meta.json
	printf '{ "name": "pino-pretty", "main": "index.js" }\n' > $(RUNTIME_MODULES)/pino-pretty/package.json
	@touch $@

# Man pages from docs/man/*.md (pandoc; `make setup` installs it).
MAN_SRC := $(wildcard docs/man/*.md)
MAN_PAGES := $(patsubst docs/man/%.md,build/man/%,$(MAN_SRC))
man: $(MAN_PAGES)
build/man/%: docs/man/%.md package.json
	@mkdir -p $(@D)
	@command -v pandoc >/dev/null || { echo "make man: pandoc is missing: run 'sudo make setup' (or apt-get install pandoc)" >&2; exit 1; }
	sed 's/@VERSION@/$(VERSION)/' $< | pandoc --standalone --from markdown --to man --output $@

# Install on a dom0 (docs/operations.md): the bundles and what they load under $(PREFIX), the
# commands in $(SBINDIR)/$(BINDIR), the systemd unit (ExecStart= says $(SBINDIR)), man pages,
# and (only if absent) /etc/xenballoond/policy.yaml and /etc/default/xenballoond. It builds what
# is missing but never runs apt: without gcc/libxen-dev or pandoc, `sudo make setup` first (or
# build elsewhere and use DESTDIR). DESTDIR stages it elsewhere; `make deb` uses it.
PREFIX ?= /opt/xenballoond
DESTDIR ?=
SBINDIR ?= /usr/local/sbin
BINDIR ?= /usr/local/bin
MANDIR ?= /usr/local/share/man
UNITDIR ?= /etc/systemd/system
SYSCONFDIR ?= /etc
# Empty: keep the bundles' `#!/usr/bin/env node` lines; `make deb` sets /usr/bin/node.
NODE_INTERPRETER ?=
# Guest tools (dom0 does not run them: they are there to copy into guests or their images).
GUEST_TOOLS := build/bin/xenballoon-report build/bin/eatmem

# Its own .PHONY line, so that branches adding targets do not conflict on one long line.
.PHONY: install uninstall
install: bundle $(GUEST_TOOLS) build/lib/libxbdshim.so
	@if command -v pandoc >/dev/null; then $(MAKE) --no-print-directory man; \
	  else echo "make install: no pandoc here, so no man pages (apt-get install pandoc, or build elsewhere)" >&2; fi
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/guest \
	  $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8 \
	  $(DESTDIR)$(SYSCONFDIR)/xenballoond/policy.d $(DESTDIR)$(SYSCONFDIR)/default
	rm -rf $(DESTDIR)$(PREFIX)/config $(DESTDIR)$(PREFIX)/node_modules $(DESTDIR)$(PREFIX)/dist
	install -m 755 $(BUNDLES) $(DESTDIR)$(PREFIX)/bin/
	if [ -n "$(NODE_INTERPRETER)" ]; then \
	  sed -i '1s|^#!/usr/bin/env -S node|#!$(NODE_INTERPRETER)|; 1s|^#!/usr/bin/env node|#!$(NODE_INTERPRETER)|' $(DESTDIR)$(PREFIX)/bin/*.mjs; fi
	cp -R $(RUNTIME_MODULES) $(DESTDIR)$(PREFIX)/ && rm -f $(DESTDIR)$(PREFIX)/node_modules/.stamp
	install -d $(DESTDIR)$(PREFIX)/config && cp -R config/policy.yaml config/scenarios config/examples $(DESTDIR)$(PREFIX)/config/
	install -m 644 build/lib/libxbdshim.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(GUEST_TOOLS) $(DESTDIR)$(PREFIX)/guest/
	ln -sfnr $(DESTDIR)$(PREFIX)/bin/xenballoond.mjs $(DESTDIR)$(SBINDIR)/xenballoond
	ln -sfnr $(DESTDIR)$(PREFIX)/bin/xenballoonctl.mjs $(DESTDIR)$(BINDIR)/xenballoonctl
	sed 's|@SBINDIR@|$(SBINDIR)|g' config/xenballoond.service.in > $(DESTDIR)$(UNITDIR)/xenballoond.service
	chmod 644 $(DESTDIR)$(UNITDIR)/xenballoond.service
	for m in build/man/*.[58]; do [ -e "$$m" ] || continue; n=$${m##*.}; install -m 644 $$m $(DESTDIR)$(MANDIR)/man$$n/ && gzip -9nf $(DESTDIR)$(MANDIR)/man$$n/$${m##*/}; done
	[ -e $(DESTDIR)$(SYSCONFDIR)/xenballoond/policy.yaml ] || install -m 644 config/policy.yaml $(DESTDIR)$(SYSCONFDIR)/xenballoond/policy.yaml
	[ -e $(DESTDIR)$(SYSCONFDIR)/default/xenballoond ] || install -m 644 config/xenballoond.default $(DESTDIR)$(SYSCONFDIR)/default/xenballoond
	@echo "installed under $(DESTDIR)$(PREFIX); next: systemctl daemon-reload && systemctl enable --now xenballoond"

# Removes what `make install` put in place (same variables), except the policy and
# /etc/default/xenballoond, which are the operator's.
uninstall:
	-[ -n "$(DESTDIR)" ] || systemctl disable --now xenballoond.service 2>/dev/null
	[ ! -e $(DESTDIR)$(PREFIX)/bin/xenballoond.mjs ] || rm -rf $(DESTDIR)$(PREFIX)
	rm -f $(DESTDIR)$(SBINDIR)/xenballoond $(DESTDIR)$(BINDIR)/xenballoonctl $(DESTDIR)$(UNITDIR)/xenballoond.service
	rm -f $(DESTDIR)$(MANDIR)/man8/xenballoond.8.gz $(DESTDIR)$(MANDIR)/man8/xenballoonctl.8.gz $(DESTDIR)$(MANDIR)/man5/xenballoond.policy.5.gz
	@echo "removed; kept $(SYSCONFDIR)/xenballoond/ and $(SYSCONFDIR)/default/xenballoond (delete them by hand if unwanted)"

# The Debian package (packaging/deb/build.sh): build/deb/xenballoond_$(VERSION)_amd64.deb,
# checked with lintian. deb-check installs it with apt into a fresh Debian 12 root (debootstrap)
# and runs the tools there under Debian's own nodejs 18 (test/deb/check.sh).
DEB := build/deb/xenballoond_$(VERSION)_amd64.deb
.PHONY: deb deb-check
deb: setup-deb bundle man $(GUEST_TOOLS) build/lib/libxbdshim.so
	packaging/deb/build.sh $(VERSION)

deb-check: deb
	test/deb/check.sh $(DEB)

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

# A benchmark, not a test: the daemon's start (process start to its first step) against a
# simulated host, tsc's dist/ against the shipped bundle (docs/benchmarks.md). Prints numbers.
.PHONY: bench-start
bench-start: build bundle
	bench/start.sh

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
lab-test: build bundle setup-lab
	@rc=0; test/lab/run.sh --timeout $(LAB_TEST_TIMEOUT) --memory 1280 test/lab/scenarios/daemon.sh || rc=$$?; \
	  timeout 120 node test/lab/chart.mjs build/lab/results || true; \
	  exit $$rc
