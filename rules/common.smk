# Helpers shared by the rules (functions and constants only: the rules live in the other files): paths,
# the settings and inputs of each run, and the code each rule's command runs.
import functools
import re
import shlex

from pipeline.codedeps import STAGE_RULES, command_code, rule_commands
from pipeline.config import (
    SAFE_NAME,
    dataset_name,
    expand_conditions,
    glue_task_of,
    intermediate_settings,
    model_tag,
    resolve_settings,
    split_settings,
    sweep_families,
)
from pipeline.tasks import TASKS, canonical_task


def code_stamp(command):
    """The stamp of the code `python -m pipeline <command>` runs (pipeline/codedeps.py): a file named
    after its digest, written by the code_stamp rule. A job lists this one file: an edit of any module
    the command imports gives a new name, hence a new input; touching a file, or editing code the command
    never runs, does not. Planning computes the digest from the sources (about 0.1 s) and writes nothing.
    The targets list the stamps missing at planning time (missing_code_stamps), so the edit reruns the
    jobs with or without Snakemake's metadata (after `rm -rf .snakemake`, or `--rerun-triggers mtime`)."""
    return f"{ROOT}/code/{command}-{command_code(command).digest}.sha256"


RULE_COMMANDS = rule_commands()


def missing_code_stamps(*stages):
    """An input function for a target: the code stamps of the stages' commands (every stage's when none
    is named) that do not exist yet. Snakemake reruns a job whose input is made by another job only when
    that job runs, and it runs a job for a missing output only when a target (or a job that runs) needs
    it: a new code version's stamp, requested by the target, makes the code_stamp job run, and every job
    that reads the stamp then reruns. (Deleting results/<study>/code reruns everything: the stamps are the
    evidence of which code made the results.)"""
    rules = [r for st in (stages or STAGE_RULES) for r in STAGE_RULES[st]]
    commands = sorted({RULE_COMMANDS[r] for r in rules if r in RULE_COMMANDS})

    def missing(wildcards):
        return [p for p in (code_stamp(c) for c in commands) if not os.path.exists(p)]

    return missing


DATASETS = sorted({dataset_name(config, t) for t in config["study"]["tasks"]} | set(TASKS))


# Dataset and GLUE task names are matched literally (re.escape: a '.' in a name matches a dot only),
# conditions by the safe-name pattern the configuration is validated against; a model tag may start
# with a dot (a folder '.my-model') but never holds '/'. Shell commands quote every value anyway ({x:q}).
wildcard_constraints:
    task="|".join(re.escape(d) for d in DATASETS),
    gtask="|".join(re.escape(t) for t in TASKS),
    condition=SAFE_NAME,
    seed=r"\d+",
    tag=r"[A-Za-z0-9_.\-]+",
    family=r"[A-Za-z0-9_]+",
    command=r"[a-z_][a-z_.]*",
    digest=r"[0-9a-f]{16}",


@functools.lru_cache(maxsize=None)
def settings_of(task, condition, seed):
    """A run's resolved settings (the config is fixed while a workflow is planned: cache it)."""
    return resolve_settings(config, task, condition, int(seed))


def features_for(task, condition, seed):
    s = settings_of(task, condition, int(seed))
    return f"{ROOT}/features/{task}/{model_tag(s['model'], s['max_seq_length'])}.pt"


def run_dir(task, condition, seed):
    return f"{ROOT}/runs/{task}/{condition}/seed{seed}"


def _feature_models():
    """{(task, tag): model name} for every features file a run or an intermediate run reads."""
    out = {}
    for t, c, seed in GRID:
        s = settings_of(t, c, seed)
        out[(t, model_tag(s["model"], s["max_seq_length"]))] = s["model"]
        if s.get("intermediate_task"):
            it = canonical_task(s["intermediate_task"])
            si = intermediate_settings(config, it, seed)
            out[(it, model_tag(si["model"], si["max_seq_length"]))] = si["model"]
    return out


FEATURE_MODELS = _feature_models()
# Every features file a job reads, the intermediate task's included (the `prepare` target builds them all,
# so DVC's prepare stage owns every file under results/features/ and later stages never change it).
FEATURES = sorted(f"{ROOT}/features/{t}/{tag}.pt" for t, tag in FEATURE_MODELS)
RUN_RECORDS = [f"{run_dir(t, c, s)}/record.json" for t, c, s in GRID]


def missing_records(wildcards):
    """The run records missing at planning time, once the study was aggregated (an input function of
    `rule all`, so cluster jobs, which plan only themselves, never call it). Snakemake reruns a job for a
    missing input only when the job that reads it runs: a run directory deleted after the aggregation
    would go unnoticed ("Nothing to be done") while runs.csv still counts it. Before the first
    aggregation the aggregation runs anyway and needs every record. (One stat per run: about 30 ms on the
    paper's grid; listing every record instead costs 2 s of planning.)"""
    if not os.path.exists(f"{ROOT}/summary/runs.csv"):
        return []
    return [r for r in RUN_RECORDS if not os.path.exists(r)]


# ---- fine-tune jobs (rules/finetune.smk) ------------------------------------------------------------
# Planning cost is per job and per input or param function (the paper grid has 6,446 runs): one of each,
# cached per run.


@functools.lru_cache(maxsize=None)
def run_inputs_of(task, condition, seed):
    """A run reads its task's features; a selected condition also its family's selection file, and
    intermediate-task transfer the intermediate model of the same seed."""
    s = settings_of(task, condition, seed)
    inputs = {"features": features_for(task, condition, seed)}
    if s.get("select"):
        inputs["selection"] = f"{ROOT}/selection/{task}/{s['select']}.json"
    if s.get("intermediate_task"):
        it = canonical_task(s["intermediate_task"])
        inputs["init"] = f"{ROOT}/intermediate/{it}/seed{seed}/model.safetensors"
    return inputs


@functools.lru_cache(maxsize=None)
def run_args_of(task, condition, seed):
    """The run's command-line arguments, every value shell-quoted (passed to the shell as it is):
    its resolved settings as one canonical JSON string, and its inputs. One string, not a list for {:q}:
    the params trigger compares this value, and quoting leaves a safe path unchanged."""
    inputs = run_inputs_of(task, condition, seed)
    args = [
        f"--settings {shlex.quote(canonical(dict(settings_of(task, condition, seed))))}",
        f"--features {shlex.quote(inputs['features'])}",
    ]
    if "selection" in inputs:
        args.append(f"--selection {shlex.quote(inputs['selection'])}")
    if "init" in inputs:
        args.append(f"--init-weights {shlex.quote(inputs['init'])}")
    args.append(f"--out {shlex.quote(run_dir(task, condition, seed))}")  # the outputs' folder
    return " ".join(args)


def run_inputs(w):
    return dict(run_inputs_of(w.task, w.condition, int(w.seed)))


def run_args(w):
    return run_args_of(w.task, w.condition, int(w.seed))


def intermediate_features(w):
    s = intermediate_settings(config, w.task, int(w.seed))
    return f"{ROOT}/features/{w.task}/{model_tag(s['model'], s['max_seq_length'])}.pt"


def family_candidates(family):
    """[{name, overrides}] of a sweep family, in the order its values are listed."""
    expanded = expand_conditions(config["conditions"])
    return [
        {"name": m, "overrides": {k: v for k, v in expanded[m].items() if k not in ("family", "description")}}
        for m in sweep_families(config["conditions"])[family]
    ]


def selection_records(w):
    members = sweep_families(config["conditions"])[w.family]
    return [f"{run_dir(t, c, s)}/record.json" for t, c, s in GRID if t == w.task and c in members]
