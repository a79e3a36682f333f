# Everything a fresh clone needs: python3 (3.10 or later), make and a C compiler (pesq
# builds its C code). All installs go into .venv; nothing is installed system-wide.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The test target installs every optional extra, so no test is ever skipped.
EXTRAS := test,plot,dask,dnsmos

.PHONY: install demo test clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "sqeval needs Python 3.10 or later; set PYTHON=python3.X")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/sqeval score sample_data/clean sample_data/enhanced --noisy sample_data/noisy

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
