# xenballoond — the commands a newcomer and CI run. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Debian packages the build and the tests need: libxenstore/libxenctrl and their headers (FFI and
# the C guest tools), the real xenstore-* CLI tools and Xen's own test-xenstore (conformance and
# interop tests against our xenstore server).
APT_PACKAGES := libxenstore4 xenstore-utils libxen-dev xen-utils-4.17 gcc make

NPM_STAMP := node_modules/.xenballoond-installed

.PHONY: help setup setup-apt build build-ts build-native test lint clean setup-lab lab-images lab-smoke

help:
	@echo "make demo    run the embedded simulated Xen host with the real daemon and watch it balance"
	@echo "make test    install what is missing, build, and run every test"
	@echo "make build   compile TypeScript to dist/ and native/ to build/bin/"
	@echo "make lint    type-check sources and tests, and run eslint"
	@echo "make setup   install missing Debian packages (apt-get, needs root) and npm packages"
	@echo "make lab-smoke  boot real Xen + dom0 + 2 PV guests under QEMU and check the libxenctrl binding (docs/lab.md)"

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

build-native:
	@mkdir -p build/bin

test: build
	npx vitest run

lint: $(NPM_STAMP)
	npx tsc -p tsconfig.check.json
	npx eslint .

clean:
	rm -rf dist build

# --- The real-Xen lab (docs/lab.md): Xen 4.17 + dom0 + PV guests under QEMU, from Debian packages.
setup-lab:
	test/lab/setup.sh

lab-images: setup-lab
	test/lab/build-images.sh

# The scenario runs in dom0 against the built dist/ and, when present, build/bin guest tools.
lab-smoke: build setup-lab
	test/lab/run.sh --timeout 900 test/lab/scenarios/smoke.sh
