# Two commands for a newcomer:
#   make study   set up .venv from the lock file and run the default study (results/)
#   make test    set up .venv from the lock file and run the test suite
# GLUE data: set GLUE_DIR to a folder in GLUE's layout to work offline; otherwise the Hub is used.
PY      ?= python3
VENV    := .venv
CORES   ?= 2
STAMP   := $(VENV)/.installed

.PHONY: setup study test smoke calibration paper-dry lock

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

lock:
	$(VENV)/bin/pip freeze | sed 's/^torch==\(.*\)+cpu$$/torch==\1/' | grep -v '^-e' > requirements.lock
