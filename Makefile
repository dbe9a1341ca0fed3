# `make demo` and `make test` work on a machine with nothing but python3 and pip:
# each builds .venv when it is missing and installs what it needs.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?= -n 2

.PHONY: demo test bench docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[plot]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e '.[plot,test,docs]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/python -m backprop demo digits

# pytest exits 5 when it collected no test: that is a failure here. The documentation site is
# built too, strictly: a broken link, a missing page or a public name without docs fails the run.
test: $(VENV)/.installed-test
	@$(BIN)/python -m pytest $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests were collected" >&2; exit 1; fi; \
	if [ $$rc -ne 0 ]; then exit $$rc; fi
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/site

# The documentation site (MkDocs, Material theme, API reference from the docstrings) in build/site.
docs: $(VENV)/.installed-test
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site
	@echo "open build/site/index.html"

# PyTorch is one of the peers: installed into .venv when missing (a local wheel on the project's
# machines); if that fails the PyTorch rows are skipped. BENCH_TORCH=0 skips the install.
BENCH_TORCH ?= 1
bench: $(VENV)/.installed-test
	@if [ "$(BENCH_TORCH)" = 1 ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		$(BIN)/python -m pip install torch==2.13.0 || echo "make bench: torch not installed; PyTorch rows skipped" >&2; \
	fi
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) build src/*.egg-info .pytest_cache
