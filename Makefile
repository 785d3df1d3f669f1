# Two commands on a fresh machine: `make demo` (the main job, embedded default) and
# `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# What is installed: the demo needs only the `local` extra; tests and tools need `dev`
# (which includes it). Two stamps, so that `make demo` then `make test` installs the rest.
LOCAL_STAMP := $(VENV)/.installed-local
DEV_STAMP := $(VENV)/.installed-dev
# The docs group (MkDocs and its plugins) besides dev: `make docs` and `make typecheck`.
DOCS_STAMP := $(VENV)/.installed-docs
PIP := $(BIN)/python -m pip
# The repository's distributions, each from its folder (docs/architecture.md), editable: the
# rotation function's (.), what it shares with the client (contract), the command (tools),
# the client, the CDK construct. What else development needs are pyproject.toml's
# dependency groups (pip >= 25.1).
PROJECT_FILES := pyproject.toml contract/pyproject.toml client/pyproject.toml tools/pyproject.toml VERSION
FUNCTION := -e ./contract -e .
# The demo's: the command with its test bed's needs, and the client (`rotation sandbox`
# prints a client example to run against its database).
LOCAL_INSTALL := $(FUNCTION) -e './tools[local]' -e ./client
DEV_INSTALL := $(FUNCTION) -e './tools[local]' -e './client[pool,sqlalchemy,django]' --group dev

# The Lambda artifact: `sam build` calls build-<Function> with ARTIFACTS_DIR (BuildMethod:
# makefile), so it needs no Docker and no local python3.12. Match LAMBDA_ARCH to the
# template's FunctionArchitecture parameter.
LAMBDA_ARCH ?= arm64
LAMBDA_PYTHON ?= 3.12

# The SAM CLI lives in its own venv: it pins boto3[crt] and click, which would downgrade ours.
SAM_VENV := .sam-venv
SAM := SAM_CLI_TELEMETRY=0 $(SAM_VENV)/bin/sam

# checkov in its own venv too: it pins many packages of its own.
CHECKOV_VENV := .checkov-venv
CHECKOV := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --skip-download --compact --quiet

.PHONY: demo test lint typecheck check bench clean artifact sam soak policy cdk dist docs

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

# A stamp holds only while what it stands for does: the `rotation` console script exists,
# the project imports from this checkout, and the extra's packages are there. Anything can
# undo an install behind make's back (a pip command run by hand uninstalls the editable
# install first), so each stamp is checked when make considers it (secondary expansion:
# only for the targets asked for), and a stale one is remade: a broken venv heals on the
# next `make`. find_spec, not import: the check costs one interpreter start.
.SECONDEXPANSION:
.PHONY: FORCE
FORCE:
installed = $(shell test -x $(BIN)/rotation && $(BIN)/python -c 'import importlib.util as u, os, sys, rotation_tools; here = os.path.realpath(sys.argv[1]) + os.sep; sys.exit(not (os.path.realpath(rotation_tools.__file__).startswith(here) and all(u.find_spec(m) for m in sys.argv[2:])))' '$(CURDIR)' $(1) >/dev/null 2>&1 && echo yes)
unless_installed = $(if $(call installed,$(1)),,FORCE)
LOCAL_MODULES := rotation_tools.cli rotation_client moto flask yaml
DEV_MODULES := $(LOCAL_MODULES) pytest hypothesis mypy cfnlint samtranslator
CDK_MODULES := $(DEV_MODULES) aws_cdk constructs cdk_nag
DOCS_MODULES := $(DEV_MODULES) mkdocs material mkdocstrings mkdocstrings_handlers.python

$(LOCAL_STAMP): $(PROJECT_FILES) $$(call unless_installed,$(LOCAL_MODULES)) | $(BIN)/python
	$(PIP) install --quiet $(LOCAL_INSTALL)
	@$(BIN)/python -m testbed.pgcluster >/dev/null
	@touch $@

# `dev` includes `local`: both stamps hold afterwards.
$(DEV_STAMP): $(PROJECT_FILES) $$(call unless_installed,$(DEV_MODULES)) | $(BIN)/python
	$(PIP) install --quiet $(DEV_INSTALL)
	@$(BIN)/python -m testbed.pgcluster >/dev/null
	@touch $@ $(LOCAL_STAMP)

demo: $(LOCAL_STAMP)
	$(BIN)/rotation demo

test: $(DEV_STAMP)
	$(BIN)/python -m pytest

lint: $(DEV_STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/cfn-lint template.yaml

# The docs group too: the site's hooks (docs/hooks) are typed against MkDocs.
typecheck: $(DOCS_STAMP)
	$(BIN)/mypy

# Branch coverage of the whole suite, subprocesses included (pyproject: [tool.coverage]),
# checked against fail_under.
check: lint typecheck policy
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

build-SingleUserFunction build-MultiUserFunction:
	$(PYTHON) tools/rotation_tools/deploy/build_artifact.py --out "$(ARTIFACTS_DIR)" --arch $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

$(SAM_VENV)/bin/sam:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet aws-sam-cli

# Offline: validate and lint the template, then a real `sam build` (no Docker).
sam: $(SAM_VENV)/bin/sam
	$(SAM) validate --lint --region us-east-1
	$(SAM) build --region us-east-1 --build-dir build/sam

# The CDK construct: the cdk extra and cdk-nag in the project's venv (jsii runs aws-cdk-lib
# in Node.js); mypy --strict on the package, and its tests, which synthesize stacks offline
# and run cdk-nag's AwsSolutions pack (tests/cdk is not collected without aws-cdk-lib).
CDK_STAMP := $(VENV)/.cdk-installed
$(CDK_STAMP): $(DEV_STAMP) cdk/pyproject.toml $$(call unless_installed,$(CDK_MODULES))
	@command -v node >/dev/null || { echo "make cdk needs Node.js (jsii runs aws-cdk-lib in it)"; exit 1; }
	$(PIP) install --quiet $(DEV_INSTALL) -e ./cdk --group cdk-test
	@touch $(CDK_STAMP)

cdk: $(CDK_STAMP)
	$(BIN)/mypy -p rotation_cdk
	$(BIN)/mypy $(wildcard tests/cdk/*.py) $(wildcard examples/cdk/*.py)
	$(BIN)/python -m pytest tests/cdk

$(CHECKOV_VENV)/bin/checkov:
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov>=3.2,<4'

# Policy as code, offline: checkov on template.yaml, on the plain CloudFormation the SAM
# transform makes of it (what a stack from the packaged template runs), and on the CDK
# construct's synthesized stacks (defaults; every option on); no failed check, every skip
# inline with its reason (the template's Metadata; the construct's from
# tools/rotation_tools/deploy/ops_resources.py). cfn-lint on the expansion too.
policy: $(DEV_STAMP) $(CHECKOV_VENV)/bin/checkov $(CDK_STAMP)
	$(BIN)/python -m rotation_tools.sam_expand --code-uri s3://example-artifacts/pg-secrets-rotation.zip --out build/cloudformation.json
	$(BIN)/cfn-lint build/cloudformation.json
	rm -rf build/cdk-policy
	$(BIN)/python -m tests.cdk.policy_stack --out build/cdk-policy
	@# -f for each file: checkov ignores -f when -d is given.
	$(CHECKOV) -f template.yaml -f build/cloudformation.json $$(printf -- '-f %s ' build/cdk-policy/*.json)

# Every distribution (docs/architecture.md) as an index would serve it: its sdist, and its
# wheel built from that sdist (what pip does with an sdist), into build/dist; twine checks
# their metadata. Offline: the build backend is the dev venv's (--no-isolation).
# tests/functional/test_distributions.py builds them the same way and checks what they hold.
DISTRIBUTIONS := . contract client tools cdk
dist: $(DEV_STAMP)
	rm -rf build/dist
	for folder in $(DISTRIBUTIONS); do \
		$(BIN)/python -m build --quiet --no-isolation --outdir build/dist $$folder || exit 1; \
	done
	$(BIN)/twine check --strict build/dist/*

# The documentation site (mkdocs.yml): MkDocs, Material and mkdocstrings (the `docs`
# dependency group) in the dev venv, whose distributions the site's hooks read to generate
# the command, configuration and error references. Strict and offline, into build/site (a
# folder of static files); then every internal link and anchor of the built site is
# checked (external links are listed in build/external-links.txt, not fetched).
$(DOCS_STAMP): $(DEV_STAMP) pyproject.toml $$(call unless_installed,$(DOCS_MODULES))
	$(PIP) install --quiet --group docs
	@touch $@

docs: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	$(BIN)/python -m docs.hooks.check_links build/site

artifact:
	rm -rf build/lambda
	$(PYTHON) tools/rotation_tools/deploy/build_artifact.py --out build/lambda --arch $(LAMBDA_ARCH) --python-version $(LAMBDA_PYTHON)

# Everything make, the tests and the tools leave in the checkout (.aws-sam: `sam build`
# without --build-dir; .hypothesis: the fault schedules' example database; *.egg-info: the
# editable install's metadata).
clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) build .aws-sam .hypothesis *.egg-info .pytest_cache .mypy_cache .ruff_cache .coverage .coverage.*

# Many more random fault schedules than `make test` runs (fresh randomness each time).
soak: $(DEV_STAMP)
	HYPOTHESIS_PROFILE=soak $(BIN)/python -m pytest tests/functional/test_fault_schedules.py -p no:cacheprovider

bench: $(DEV_STAMP)
	$(BIN)/python bench/run.py
