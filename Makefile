# vmgrid build entry points. Everything the project needs is installed from here.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TOOLS := .tools
BUF := $(TOOLS)/node_modules/.bin/buf
UPLOT_VERSION := 1.6.32
VENDOR := coordinator/web/static/vendor
UPLOT := $(VENDOR)/uplot-$(UPLOT_VERSION).stamp
APT_PACKAGES := libvirt-dev pkg-config libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients \
	qemu-system-x86 qemu-utils iproute2 prometheus chromium acl \
	dnsmasq-base libcap2-bin nfs-ganesha nfs-ganesha-vfs openssh-client \
	etcd-server etcd-client nftables gcc libc6-dev
# --durations: the slowest tests are listed, to keep the suite near 20 minutes
PYTEST_ARGS ?= --durations=25

.PHONY: install system-deps test test-fast lint proto demo bench clean typecheck-tree guest-image peers

install: $(STAMP) $(BUF) $(UPLOT) guest-image

# The lab's Debian guest image (build/guest-image/debian-<recipe hash>.qcow2); the script
# does nothing when the image of the current recipe exists. See docs/lab.md.
guest-image:
	@deploy/scripts/build-guest-image.sh

system-deps:
	@deploy/scripts/install-system-deps.sh $(APT_PACKAGES)

$(STAMP): pyproject.toml
	@deploy/scripts/install-system-deps.sh $(APT_PACKAGES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

$(BUF):
	mkdir -p $(TOOLS)
	cd $(TOOLS) && npm install --silent --no-audit --no-fund @bufbuild/buf@1 >/dev/null

# uPlot (MIT), the dashboard's charts: from npm into .tools, its dist files copied beside the
# page (served by the package, never from a CDN; not committed: built here).
$(UPLOT):
	mkdir -p $(TOOLS) $(VENDOR)
	cd $(TOOLS) && npm install --silent --no-audit --no-fund uplot@$(UPLOT_VERSION) >/dev/null
	rm -f $(VENDOR)/uplot-*.stamp
	cp $(TOOLS)/node_modules/uplot/dist/uPlot.iife.min.js $(TOOLS)/node_modules/uplot/dist/uPlot.min.css $(VENDOR)/
	cp $(TOOLS)/node_modules/uplot/LICENSE $(VENDOR)/uPlot.LICENSE
	touch $@

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

test-fast: install
	$(PY) -m pytest -m "not system and not slow and not browser" $(PYTEST_ARGS)

# mypy cannot follow the editable install's import hook, so it checks a tree of links
# that spells the vmgrid namespace out.
typecheck-tree:
	@rm -rf build/typecheck && mkdir -p build/typecheck/vmgrid
	@for pair in v1:proto/vmgrid/v1 agents:agents coordinator:coordinator solver:solver bench:bench lab:deploy/lab demo:deploy/demo; do \
		ln -s "$(CURDIR)/$${pair#*:}" "build/typecheck/vmgrid/$${pair%%:*}"; done

lint: install typecheck-tree
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd build/typecheck && ../../$(VENV)/bin/mypy --config-file ../../pyproject.toml -p vmgrid
	$(BUF) lint proto

proto: install
	$(PY) -m grpc_tools.protoc -I proto \
		--python_out=proto --pyi_out=proto --grpc_python_out=proto \
		$$(find proto/vmgrid/v1 -name '*.proto' | sort)

demo: install
	$(VENV)/bin/vmgrid-demo

bench: install
	deploy/scripts/bench-all.sh

# Peer solvers for `vmgrid-bench solver-peers` (ProxLB's, Watcher's), each in its own virtualenv
# under build/peers; never in vmgrid's dependencies. The bench also installs them on first use.
peers: install
	$(PY) -m vmgrid.bench.peers_env

clean:
	rm -rf build $(VENV) $(TOOLS) $(VENDOR) .pytest_cache .mypy_cache .ruff_cache
