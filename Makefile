# Both Quickstart targets set up what they need: a .venv with the project installed.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.rrn-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/rrn demo --out runs/demo

test: $(STAMP)
	$(PY) -m pytest -q

# The linter (dead `noqa`s included) and the formatter's check: what CI holds the code to.
lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

bench: $(STAMP)
	$(PY) benchmarks/model.py
	$(PY) benchmarks/data.py
	$(PY) benchmarks/stream.py
	$(PY) benchmarks/precision.py
	$(PY) benchmarks/serve.py
	$(PY) benchmarks/hostile.py

clean:
	rm -rf runs .pytest_cache build src/*.egg-info
