# osbs.flow: `make demo` runs the main job on osbs-local; `make test` runs every test.
SHELL := /bin/bash
.DEFAULT_GOAL := help

REPO        := $(abspath .)
VENV        := $(REPO)/.venv
PY          := $(VENV)/bin/python
BUILD       := $(REPO)/build
COLLECTIONS := $(BUILD)/collections
SANITY_ROOT := $(BUILD)/sanity/ansible_collections/osbs/flow
SITE        := $(shell [ -x $(PY) ] && $(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
DEBIAN_PACKAGES := buildah podman skopeo runc docker-registry busybox-static apache2-utils git openssl \
                   postgresql rsync graphviz
PYTHON      ?= python3
PYTEST      := $(PY) -m pytest -p no:cacheprovider
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLLECTIONS)

.PHONY: help setup debian-packages venv collection ansible-test-offline test test-fast python-tests sanity lint unit engine integration molecule demo bench clean

help:
	@echo "make demo   - set up, start osbs-local and run the build flow on sample repositories"
	@echo "make test   - set up, then sanity, ansible-lint, unit, engine, integration and molecule tests"
	@echo "make test-fast - the Python tests without image builds, playbook flows or Pulp (the inner loop)"
	@echo "make setup  - install what is missing (Debian packages, .venv, the collection)"
	@echo "make bench  - benchmarks (JSON on stdout)"

setup: debian-packages venv collection ansible-test-offline

debian-packages:
	@missing=$$(for p in $(DEBIAN_PACKAGES); do dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "Installing Debian packages:" $$missing; \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# Reinstall only when the declared dependencies change.
venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -m pip install -q -e '.[collection,dev]' -r requirements.txt 2>&1 | grep -v '^WARNING: Location' || true
	$(PY) -c 'import ansible_collections.kubernetes.core, kubernetes, docker, dockerfile_parse, pulp_glue, osbs_local'
	touch $@

# The checkout is the collection: link it where ansible looks for osbs.flow.
collection: venv
	@mkdir -p $(COLLECTIONS)/ansible_collections/osbs
	@ln -sfn $(REPO) $(COLLECTIONS)/ansible_collections/osbs/flow

ansible-test-offline:
	@mkdir -p $(HOME)/.ansible/test/cache
	@cp hack/get_pip_offline.py $(HOME)/.ansible/test/cache/get_pip_24_2.py

# Every suite runs even when an earlier one fails; the exit status says whether all passed, and the
# last lines what each suite took.
test: setup
	@status=0; took=""; \
	for suite in sanity lint python-tests molecule; do \
	  start=$$SECONDS; \
	  $(MAKE) --no-print-directory $$suite || status=1; \
	  took="$$took $$suite $$((SECONDS - start)) s,"; \
	done; \
	echo "make test: took$${took%,}"; \
	[ $$status = 0 ] && echo "make test: every suite passed" || echo "make test: a suite failed (see above)"; \
	exit $$status

# One pytest run for the Python suites, so they share one osbs-local (a session fixture); it ends with
# the slowest tests and their times. Not spread over pytest-xdist workers: on the 2-core machine the
# tests are CPU-bound (buildah, ansible processes), each worker starts its own osbs-local, base image
# and Pulp, and a timing test (test_run_policies) failed under `-n 2`; unit 6.0 s serial, 8.0 s with -n 2.
python-tests: setup
	$(PYTEST) tests -q -ra --durations=25

# ansible-test needs a path ending in ansible_collections/osbs/flow holding only the collection,
# with kubernetes.core beside it for the import test; the copy leaves out the engine and its tests.
sanity: setup
	@rm -rf $(BUILD)/sanity && mkdir -p $(SANITY_ROOT) $(BUILD)/sanity/ansible_collections/kubernetes
	@rsync -a --exclude-from=hack/sanity-exclude $(REPO)/ $(SANITY_ROOT)/
	@ln -sfn $(SITE)/ansible_collections/kubernetes/core $(BUILD)/sanity/ansible_collections/kubernetes/core
	@# Its own git repository, or ansible-test sees the parent checkout, where build/ is ignored.
	@cd $(SANITY_ROOT) && git init -q && git add -A
	cd $(SANITY_ROOT) && ansible-test sanity --local --python 3.11 --color no

# ansible-lint --profile production, as Galaxy and Automation Hub users run it (settings and skips in .ansible-lint).
lint: setup
	ansible-lint --profile production

# The inner loop: no sanity, no lint, and no test marked slow (image builds, the wave, playbook flows)
# or pulp (pyproject.toml lists the markers).
test-fast: setup
	$(PYTEST) tests -q -ra --durations=10 -m 'not slow and not pulp'

unit: setup
	$(PYTEST) tests/unit -q

engine: setup
	$(PYTEST) tests/engine -q

integration: setup
	$(PYTEST) tests/integration -q

molecule: setup
	bash hack/molecule.sh

demo: setup
	bash hack/demo.sh

# Benchmarks (not part of make test), JSON on stdout, one document per script; each starts and stops its own
# osbs-local. The fan-out at N=200 takes about 5 minutes: `make bench BENCH_FANOUT=10,50,200`.
BENCH_FANOUT ?= 10,50
bench: setup
	$(PY) bench/bench_flow.py
	$(PY) bench/bench_fanout.py --n $(BENCH_FANOUT)
	$(PY) bench/bench_module_startup.py
	$(PY) bench/bench_whatif.py
	$(PY) bench/bench_api.py

clean:
	rm -rf $(BUILD) .pytest_cache
