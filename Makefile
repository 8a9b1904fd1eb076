# `make demo` and `make test` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))
# The demo needs the package and rich (its progress bars), not the dev extra's Ray/Daft/Dask.
DEMO_EXTRAS := progress
DEMO_STAMP  := $(VENV)/.installed-$(DEMO_EXTRAS)

.PHONY: demo test lint check-dot docs typecheck bench bench-peers clean

$(VENV)/.installed-%: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(subst -,$(comma),$*)]"
	touch $@

demo: $(DEMO_STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/hypernodes run examples/demo.py:build_pipeline -i path=examples/data/tickets.txt --output report

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

# dot is checked first, before the dev extra is installed: without it the picture tests would fail.
test: check-dot
	$(MAKE) --no-print-directory lint
	$(BIN)/python -m pytest -q

check-dot:
	@command -v dot >/dev/null 2>&1 || { \
	  echo "make test: graphviz's 'dot' program is missing; the picture tests render with it." >&2; \
	  echo "  Install it, then run make test again:" >&2; \
	  echo "    Debian/Ubuntu: sudo apt-get install graphviz    macOS: brew install graphviz" >&2; \
	  echo "    conda: conda install -c conda-forge graphviz    others: https://graphviz.org/download/" >&2; \
	  exit 1; }

# The docs site (mkdocs, Material, the API reference from docstrings) into site/; tests run it too.
docs: $(STAMP)
	$(BIN)/mkdocs build --strict

# mypy --strict on the package (pyproject's settings and allow-list); tests/test_typing.py too.
typecheck: $(STAMP)
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The chain, map and warm-cache workloads side by side with pipefunc and Hamilton (the bench extra).
bench-peers:
	$(MAKE) --no-print-directory EXTRAS=bench _bench-peers

_bench-peers: $(STAMP)
	$(BIN)/python benchmarks/run.py --peers

clean:
	rm -rf $(VENV) .venv-3.* .pytest_cache .ruff_cache .hypothesis .mypy_cache site
