# Helpers shared by the rules: paths, the settings of each run, code dependencies.
import functools
import hashlib
import os
import re
from pathlib import Path
from pipeline.config import (SAFE_NAME, dataset_name, glue_task_of, intermediate_settings, model_tag,
                             resolve_settings, split_settings, sweep_families)
from pipeline.tasks import canonical_task
from pipeline.tasks import TASKS

# Fine-tune jobs depend on the modules a run executes only: editing analysis or figure code never
# reruns one. pipeline/config.py is not among them: a run receives its resolved settings (a rule param),
# so a config change that alters a run's settings reruns exactly that run through the params trigger.
ENGINE = sorted(f"pipeline/{m}.py" for m in (
    "runner", "settings", "errors", "architecture", "features", "io", "metrics", "model", "optim", "reinit", "seeds",
    "splits", "tasks", "train", "drift"))


def engine_stamp(root, modules):
    """A file named after the SHA-256 of the engine modules' contents (it lists each module's digest),
    written when planning finds it missing: jobs list this one file instead of the eleven modules.

    An edit of any module gives a new name, hence a new input that did not exist when the runs were
    made (rerun, with or without Snakemake's metadata); touching a module without changing it does
    not. Snakemake's planning work is per job and per input: eleven code files per job were about
    2.5 of the paper grid's 18 s of dry run. (Neither "the newest module" nor a rule writing the digest
    will do: Snakemake 9 ignores a newer input whose checksum it has seen, and an edge to another
    job's output costs more than a plain file.)"""
    lines = "".join(f"{hashlib.sha256(Path(m).read_bytes()).hexdigest()}  {m}\n" for m in modules)
    path = Path(root) / "engine" / f"{hashlib.sha256(lines.encode()).hexdigest()[:16]}.sha256"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}")
        tmp.write_text(lines)
        os.replace(tmp, path)  # atomic: cluster jobs plan the same workflow at the same time
    return str(path)


ENGINE_STAMP = engine_stamp(ROOT, ENGINE)

DATA_CODE = sorted(f"pipeline/{m}.py" for m in ("prepare", "data", "splits", "tasks", "io", "metrics")) + [
    "pipeline/fingerprints.json"]

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
