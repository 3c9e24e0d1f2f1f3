# The two commands a new user needs: `make run` and `make test`. Both build .venv from nothing.
# `make docs` builds the reference documentation (offline) into build/docs/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SEED   ?= 1
REPS   ?= 4
OUT    ?= results/emrad

.PHONY: run test test-slow bench bench-cache docs venv clean build-tools

$(STAMP): pyproject.toml setup.py sim/_loops.pyx Makefile
	@$(MAKE) --no-print-directory build-tools
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks,docs]'
	touch $(STAMP)

venv: $(STAMP)

# pip builds sim/_loops.pyx (the compiled statistics loops): that needs a C compiler and the
# interpreter's headers. Installed here when missing and possible (root on Debian), else a clear error.
HEADERS_OK = $(PYTHON) -c "import os, sysconfig; raise SystemExit(not os.path.exists(os.path.join(sysconfig.get_paths()['include'], 'Python.h')))"
build-tools:
	@if ! command -v cc >/dev/null 2>&1 || ! $(HEADERS_OK); then \
	    if [ "$$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then \
	        echo "make: installing a C compiler and Python headers (gcc, python3-dev) to build sim/_loops.pyx"; \
	        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev python3-dev >/dev/null; } \
	            || { echo "make: could not install gcc / python3-dev" >&2; exit 1; }; \
	    else \
	        echo "make: building sim/_loops.pyx needs a C compiler (cc) and $(PYTHON)'s headers (Python.h):" \
	             "install them (Debian/Ubuntu: apt-get install gcc python3-dev) and run make again" >&2; \
	        exit 1; \
	    fi; \
	fi

run: $(STAMP)
	$(BIN)/emrad-sim run params/emrad.toml --replications $(REPS) --seed $(SEED) --out $(OUT)

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	EMRAD_HYPOTHESIS_PROFILE=explore $(BIN)/python -m pytest -m slow

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet
	@echo "docs: build/docs/index.html"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_year.py $(BENCH_ARGS)

# instructions and simulated cache misses per SimPy event (8 vs 32 trusts) and per exam (brokered vs local); valgrind, ~10 min
bench-cache: $(STAMP)
	$(BIN)/python benchmarks/cache_profile.py $(CACHE_ARGS)

clean:
	rm -rf $(VENV) results/emrad .pytest_cache build/docs
