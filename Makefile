# Two commands (see README):  make book  ·  make test
VENV ?= .venv
PY := $(VENV)/bin/python
# Real data for machines without internet: ../shared/data if it is there.
SGDTEMP_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),)
export SGDTEMP_DATA

.PHONY: book test install browser clean mutate

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $@

# Headless Chromium and its driver for tests/test_browser.py: Debian's packages, installed
# only when missing (as root, or through sudo).
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	else SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; fi

# Build the whole book (HTML in _build/html) at default fidelity, strictly.
book: install
	$(VENV)/bin/jupyter-book build . -W -n --keep-going

# Library tests, CLI tests, every chapter under nbval at smoke, the strict smoke build and
# every page of it in a headless browser. Smoke training results go to a fresh folder, so
# the tests really train rather than reading what an earlier run left in the cache.
test: install browser
	SGDTEMP_RESULTS=$$(mktemp -d) $(VENV)/bin/pytest --nbval-lax -v

# Mutation testing of the core modules against the non-slow tests (tests/README.md): a
# developer command, not part of `make test` or CI. MUTANTS selects mutants by name
# pattern, e.g. make mutate MUTANTS='sgdtemp.store*'; results are kept in mutants/ and
# a second run only tests what changed. `mutmut show NAME` prints one mutant's diff.
MUTANTS ?=
MUTATE_JOBS ?= 1
mutate: install
	$(VENV)/bin/pip install -q -r requirements-dev.txt
	env -u PYTHONPATH OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 SGDTEMP_RESULTS=$$(mktemp -d) \
	  nice -n 10 $(VENV)/bin/mutmut run --max-children $(MUTATE_JOBS) $(MUTANTS)
	$(VENV)/bin/mutmut results | grep -v ": not checked" || true

clean:
	rm -rf _build .nbval mutants
