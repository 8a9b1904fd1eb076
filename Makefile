# `make demo` and `make test` work on a fresh machine: they create .venv and install into it.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
EXTRAS ?= dev
comma  := ,
STAMP  := $(VENV)/.installed-$(subst $(comma),-,$(EXTRAS))

.PHONY: demo test lint bench bench-peers clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python examples/demo.py
	$(BIN)/hypernodes run examples/demo.py:build_pipeline -i path=examples/data/tickets.txt --output report

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/ruff format --check src tests benchmarks examples

test: lint
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

# The chain, map and warm-cache workloads side by side with pipefunc and Hamilton (the bench extra).
bench-peers:
	$(MAKE) --no-print-directory EXTRAS=bench _bench-peers

_bench-peers: $(STAMP)
	$(BIN)/python benchmarks/run.py --peers

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
