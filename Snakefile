# Revisiting few-sample BERT fine-tuning: the whole study as a Snakemake workflow.
#   snakemake                                 the default study (params.yaml) -> results/
#   snakemake --configfile configs/smoke.yaml an overlay study -> results/<study.name>/
# profiles/default/config.yaml (loaded by Snakemake 9 on its own) sets 2 cores, --rerun-incomplete and
# the rest; flags on the command line (--cores 8) take precedence over it, and it applies under
# --profile profiles/slurm too. A finished run prints one line (task, condition, seed, score, time);
# its progress goes to results/<study>/logs/runs/<task>/<condition>/seed<N>.log.
# The configuration is validated before any job runs; planning never imports torch or the model and
# writes nothing. Shell commands quote every value they splice in ({name:q}: configuration strings,
# wildcards, paths) and take directories as params, never $(dirname ...).
import gc
import os
import sys

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version

min_version("9.0")

# Planning the paper's grid (6,600 jobs) makes millions of small objects that live until the end; at
# Python's default thresholds (700, 10, 10) its cyclic garbage collector rescans them all again and
# again: about 2 of the 15 s of `snakemake -n` on that grid. Collect less often (same peak memory).
gc.set_threshold(100_000, 50, 100)


configfile: "params.yaml"


from pipeline.config import canonical, config_hash, run_grid, study_root, workflow_errors

# Each problem names the file its key came from: params.yaml, then every --configfile in order. (Snakemake
# reads --configfile itself before this file runs: for a YAML syntax error, an empty or a list file its own
# message names no file; `python -m pipeline validate --config params.yaml FILE` names the file and line.)
_errors = workflow_errors(config, ["params.yaml", *map(str, workflow.overwrite_configfiles or [])])
if _errors:
    raise WorkflowError("invalid configuration:\n  - " + "\n  - ".join(_errors))

ROOT = study_root(config)
GRID = run_grid(config)


# Jobs run `python` from the environment Snakemake runs in (.venv), also on cluster nodes (their job
# step runs this file again): its folder goes first on the PATH the shell commands see.
envvars:
    "PATH",


os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/finetune.smk"
include: "rules/analysis.smk"
include: "rules/report.smk"


# Cheap stages run where Snakemake runs (the submit node on a cluster), never as cluster jobs.
localrules:
    code_stamp,
    study_config,
    aggregate,
    metrics,
    provenance,
    select,
    analyze,
    claims_metrics,
    figures,
    report,


# Everything: the summaries, metrics, tables, figures and report, and the run records missing since the
# last aggregation (rules/common.smk missing_records: so `snakemake` notices a deleted run directory).
rule all:
    default_target: True
    input:
        missing_records,
        missing_code_stamps(),
        rules.aggregate.output,
        rules.metrics.output,
        rules.provenance.output,
        rules.analyze.output,
        rules.claims_metrics.output,
        rules.figures.output,
        rules.report.output,


# Targets of the DVC stages (dvc.yaml): `snakemake prepare` builds every features file, `snakemake
# runs` every run (and what they read: selections, intermediate models).
rule prepare:
    input:
        FEATURES,
        missing_code_stamps("prepare"),


rule runs:
    input:
        RUN_RECORDS,
        missing_code_stamps("prepare", "finetune"),


# The stamp of the code a command runs (rules/common.smk code_stamp): written once per code version.
rule code_stamp:
    output:
        f"{ROOT}/code/{{command}}-{{digest}}.sha256",
    log:
        f"{ROOT}/logs/code/{{command}}-{{digest}}.log",
    shell:
        "python -m pipeline.codedeps --stamp {wildcards.command:q} --digest {wildcards.digest:q} "
        "--out {output:q} 2> {log:q}"
