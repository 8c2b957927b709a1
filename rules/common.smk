# Helpers shared by the rules: paths, the settings of each run, code dependencies.
import functools
import os
from pipeline.config import (dataset_name, glue_task_of, intermediate_settings, model_tag, resolve_settings,
                             split_settings, sweep_families)
from pipeline.tasks import canonical_task
from pipeline.tasks import TASKS

# Fine-tune jobs depend on the modules a run executes only: editing analysis or figure code never
# reruns one. pipeline/config.py is not among them: a run receives its resolved settings (a rule param),
# so a config change that alters a run's settings reruns exactly that run through the params trigger.
ENGINE = sorted(f"pipeline/{m}.py" for m in (
    "runner", "features", "io", "metrics", "model", "optim", "seeds", "splits", "tasks", "train", "drift"))
# A job is rerun when an input is newer than its outputs, so the newest engine module decides for all of
# them: jobs list that one file. Every input costs Snakemake ~0.14 ms per job to plan, and listing all
# eleven was 10 of the 16 s of the paper grid's dry run (a rule writing one fingerprint file of them
# instead costs more: each edge to another job's output is dearer than a plain file).
NEWEST_ENGINE_MODULE = max(ENGINE, key=os.path.getmtime)
DATA_CODE = sorted(f"pipeline/{m}.py" for m in ("prepare", "data", "splits", "tasks", "io", "metrics")) + [
    "pipeline/fingerprints.json"]

DATASETS = sorted({dataset_name(config, t) for t in config["study"]["tasks"]} | set(TASKS))

wildcard_constraints:
    task="|".join(DATASETS),
    gtask="|".join(TASKS),
    condition=r"[A-Za-z0-9_.\-]+",
    seed=r"\d+",
    tag=r"[A-Za-z0-9_.\-]+",
    family=r"[A-Za-z0-9_]+",


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
