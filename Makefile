# The two commands a new user needs: `make run` and `make test`. Both build .venv from nothing.
# `make docs` builds the reference documentation (offline) into build/docs/.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
SEED   ?= 1
REPS   ?= 4
OUT    ?= results/emrad

.PHONY: run test test-slow bench docs venv clean

$(STAMP): pyproject.toml setup.py sim/_loops.pyx Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,notebooks,docs]'
	touch $(STAMP)

venv: $(STAMP)

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

clean:
	rm -rf $(VENV) results/emrad .pytest_cache build/docs
