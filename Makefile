# Two commands on a fresh machine: `make demo` (the main job, embedded default) and
# `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

# The Lambda artifact: `sam build` calls build-<Function> with ARTIFACTS_DIR (BuildMethod:
# makefile), so it needs no Docker and no local python3.12. Match LAMBDA_ARCH to the
# template's FunctionArchitecture parameter.
LAMBDA_ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12

.PHONY: demo test lint typecheck check bench clean artifact

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@$(BIN)/python -c "import rotation_tools.testbed.pgcluster as p; p.find_bindir()" || \
	  { echo "PostgreSQL server binaries are missing: see README (Requirements)"; exit 1; }
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/rotation demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml

typecheck: $(STAMP)
	$(BIN)/mypy

check: lint typecheck
	$(BIN)/python -m pytest --cov --cov-report=term-missing:skip-covered

build-SingleUserFunction build-MultiUserFunction:
	$(PYTHON) rotation_tools/build_artifact.py --out "$(ARTIFACTS_DIR)" --arch $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

artifact:
	rm -rf build/lambda
	$(PYTHON) rotation_tools/build_artifact.py --out build/lambda --arch $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage

bench: $(STAMP)
	$(BIN)/python bench/run.py
