# Two commands for a newcomer:
#   make study   set up .venv from the lock file and run the default study (results/)
#   make test    set up .venv from the lock file and run the test suite
# GLUE data: set GLUE_DIR to a folder in GLUE's layout to work offline; otherwise the Hub is used.
# Snakemake loads profiles/default/config.yaml on its own (2 cores, --rerun-incomplete, ...):
# `make study CORES=8` overrides its core count.
PY      ?= python3
VENV    := .venv
CORES   ?= 2
STAMP   := $(VENV)/.installed
SMK     := Snakefile rules/*.smk

.PHONY: setup study test smoke calibration paper-dry lock lint fmt dvc-deps

$(STAMP): requirements.lock
	test -x $(VENV)/bin/python || $(PY) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements.lock
	touch $(STAMP)

setup: $(STAMP)

study: setup
	$(VENV)/bin/snakemake --cores $(CORES)

test: setup
	$(VENV)/bin/python -m pytest -q tests

smoke: setup
	$(VENV)/bin/snakemake --cores $(CORES) --configfile configs/smoke.yaml

calibration: setup
	$(VENV)/bin/snakemake --cores $(CORES) --configfile configs/calibration.yaml

paper-dry: setup
	$(VENV)/bin/snakemake -n --quiet rules --configfile configs/paper.yaml

# The workflow's conventions (CI runs this): snakefmt formatting, Snakemake's linter (only the accepted
# items of tests/lint_workflow.py), dvc.yaml's code deps equal to the ones derived from the imports.
lint: setup
	$(VENV)/bin/snakefmt --check $(SMK)
	$(VENV)/bin/python tests/lint_workflow.py
	$(VENV)/bin/python -m pipeline.codedeps --check

fmt: setup
	$(VENV)/bin/snakefmt $(SMK)

# Rewrite dvc.yaml's code deps from the imports of each stage's commands (pipeline/codedeps.py).
dvc-deps: setup
	$(VENV)/bin/python -m pipeline.codedeps --write

lock:
	$(VENV)/bin/pip freeze | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' | grep -v '^-e' > requirements.lock
