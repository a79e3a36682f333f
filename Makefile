# Everything a fresh clone needs: python3 (3.10 or later), make and a C compiler (pesq
# builds its C code). All installs go into .venv; nothing is installed system-wide.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# The test target installs every optional extra, so no test is ever skipped.
EXTRAS := test,plot,dask,dnsmos,visqol,torch
# torch is installed first, pinned: on this project's machines `pip install torch==2.13.0`
# takes a CPU build from local disk (elsewhere PyPI's build of that release). Left to
# resolve `torch>=2.1` alone, pip would download the newest CUDA build (several GB).
TORCH  ?= torch==2.13.0
# asteroid's PMSQE loss is a reference of sqeval.losses.pmsqe_loss: installed without its
# dependencies (they pull torchaudio, another multi-GB download), with only what
# `import asteroid.losses` needs.
PEERS_NO_DEPS := asteroid==0.7.0 asteroid-filterbanks==0.4.0 huggingface-hub==2.4.0

.PHONY: install demo docs test test-oldest clean

$(BIN)/python:
	$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "sqeval needs Python 3.10 or later; set PYTHON=python3.X")'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check "$(TORCH)"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]"
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps $(PEERS_NO_DEPS)
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/sqeval score sample_data/clean sample_data/enhanced --noisy sample_data/noisy

# docs: the documentation site (docs/, mkdocs.yml) into build/site/; --strict fails on a
# broken link, anchor or API reference.
$(VENV)/.installed-docs: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[docs]"
	touch $@

docs: $(VENV)/.installed-docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict

# test: the whole suite, then the tests that compare numbers (marker `numeric`) again under
# every other CPU profile this machine offers: each numpy SIMD level below the top one, and
# OpenBLAS's generic and Haswell kernels (scripts/cpu_profiles.py names each in the log).
test: $(VENV)/.installed-test
	@bash scripts/system_packages.sh
	$(BIN)/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(BIN)/python -m mkdocs build --strict --quiet
	$(BIN)/python scripts/cpu_profiles.py --skip-plain

# test-oldest: the suite against the oldest versions pyproject.toml allows (the pins in
# constraints-oldest.txt, one per floor), in its own venv. The oldest supported Python,
# 3.10, is used where one runs (on PATH, or pyenv's); otherwise python3. The pins have
# wheels for 3.10 and 3.11 alike, so a machine with only python3 (3.11) runs it too.
VENV_OLDEST := .venv-oldest
ifndef PYTHON_OLDEST
PYTHON_OLDEST := $(firstword $(foreach p,python3.10 $(wildcard $(HOME)/.pyenv/versions/3.10.*/bin/python3),$(if $(shell $(p) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 10))' 2>/dev/null && echo y),$(p))) $(PYTHON))
endif
KEY_PACKAGES := numpy|scipy|pandas|soundfile|pystoi|pesq|typer|click|rich|pytest|hypothesis|selenium|fast.bss.eval|mir.eval|matplotlib|dask|distributed|speechmos|onnxruntime|librosa|soxr|numba|llvmlite|tomli|visqol.python|ai.edge.litert|libsvm.official|torch|torchmetrics|auraloss|ci.sdr|asteroid

$(VENV_OLDEST)/.installed: pyproject.toml constraints-oldest.txt
	rm -rf $(VENV_OLDEST)
	$(PYTHON_OLDEST) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "sqeval needs Python 3.10 or later; set PYTHON_OLDEST=python3.X")'
	$(PYTHON_OLDEST) -m venv $(VENV_OLDEST)
	$(VENV_OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$(EXTRAS)]" -c constraints-oldest.txt
	$(VENV_OLDEST)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps $(PEERS_NO_DEPS)
	touch $@

test-oldest: $(VENV_OLDEST)/.installed
	@bash scripts/system_packages.sh
	@$(VENV_OLDEST)/bin/python --version
	@$(VENV_OLDEST)/bin/python -m pip freeze --disable-pip-version-check | grep -iE '^($(KEY_PACKAGES))=='
	$(VENV_OLDEST)/bin/python -m pytest -q
	NO_MKDOCS_2_WARNING=1 $(VENV_OLDEST)/bin/python -m mkdocs build --strict --quiet --site-dir build/site-oldest
	$(VENV_OLDEST)/bin/python scripts/cpu_profiles.py --skip-plain --max-levels 1

clean:
	rm -rf $(VENV) $(VENV_OLDEST) *.egg-info .pytest_cache
