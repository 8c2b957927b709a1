# Revisiting few-sample BERT fine-tuning: the whole study as a Snakemake workflow.
#   snakemake --cores 2                                  the default study (params.yaml) -> results/
#   snakemake --cores 2 --configfile configs/smoke.yaml  an overlay study -> results/<study.name>/
# The configuration is validated before any job runs; planning never imports torch or the model.
# Shell commands quote every value they splice in, {name:q} (configuration strings, wildcards, paths,
# globals such as {PY:q} and {ROOT:q}), and take directories as params, never $(dirname ...).
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

configfile: "params.yaml"

from pipeline.config import canonical, config_hash, run_grid, study_root, workflow_errors

# Each problem names the file its key came from: params.yaml, then every --configfile in order. (Snakemake
# reads --configfile itself before this file runs: for a YAML syntax error, an empty or a list file its own
# message names no file; `python -m pipeline validate --config params.yaml FILE` names the file and line.)
_errors = workflow_errors(config, ["params.yaml", *map(str, workflow.overwrite_configfiles or [])])
if _errors:
    raise WorkflowError("invalid configuration:\n  - " + "\n  - ".join(_errors))

ROOT = study_root(config)
PY = sys.executable   # the environment Snakemake runs in (.venv), also on cluster nodes
GRID = run_grid(config)

include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"

# Cheap stages run where Snakemake runs (the submit node on a cluster), never as cluster jobs.
localrules: study_config, aggregate, metrics, provenance, select, prepare, runs


rule all:
    input:
        ANALYSIS_OUTPUTS,
        REPORT_OUTPUTS,
    default_target: True
