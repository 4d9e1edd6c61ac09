# Accord — the README's two commands are `make demo` and `make test`.
# Everything else here is what those two are made of.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Data goes where the `accord` command puts it (ACCORD_HOME, default ~/.accord): one default for
# `make demo` and for the commands a newcomer runs next.

.PHONY: help venv demo test lint format bench attribution-libraries clean screenshots

help:
	@echo "make demo   - set up .venv and run the end-to-end demo (SQLite, local files, local process pool)"
	@echo "make test   - set up .venv and run lint and the whole test suite (SQLite and PostgreSQL)"
	@echo "make bench  - run the benchmarks and print their tables"
	@echo "make lint   - ruff check and ruff format --check"

# The virtual environment, rebuilt when pyproject.toml changes.
$(BIN)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed")'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

venv: $(BIN)/.installed

demo: venv
	bash scripts/system-deps
	$(BIN)/accord init
	$(BIN)/accord demo

test: venv lint
	bash scripts/system-deps
	bash scripts/ensure-postgres
	ACCORD_TEST_REQUIRE_SERVICES=$(if $(ACCORD_TEST_ALLOW_SKIP),0,1) \
	  $(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: venv
	$(BIN)/python -m benchmarks

# The field's attribution libraries, for `python -m benchmarks.lds --libraries` only: both pin
# torchvision, which pulls another torch than 2.13.0, so they come without their dependencies,
# with the small ones they import (benchmarks/lds_libraries.py).
attribution-libraries: venv
	$(BIN)/python -m pip install --quiet --no-deps kronfluence==1.0.1 dattri==0.3.0 \
	  accelerate einops einconv opt_einsum safetensors psutil

# The portal's main pages, per role, photographed by headless Chromium over a small seeded demo.
screenshots: venv
	bash scripts/system-deps
	$(BIN)/python scripts/screenshots.py --out docs/screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
