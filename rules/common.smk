# Helpers shared by the rules: paths, the settings of each run, code dependencies.
from pipeline.config import model_tag, resolve_settings, split_settings, sweep_families
from pipeline.tasks import TASKS

# Fine-tune jobs depend on the engine's modules only: editing analysis or figure code never reruns one.
ENGINE = sorted(f"pipeline/{m}.py" for m in (
    "__init__", "__main__", "cli", "config", "data", "features", "io", "metrics", "model", "optim",
    "provenance", "seeds", "splits", "tasks", "train", "drift"))
DATA_CODE = sorted(f"pipeline/{m}.py" for m in ("data", "splits", "tasks", "io", "metrics", "cli")) + [
    "pipeline/fingerprints.json"]

wildcard_constraints:
    task="|".join(TASKS),
    condition=r"[A-Za-z0-9_.\-]+",
    seed=r"\d+",
    tag=r"[A-Za-z0-9_.\-]+",


def run_settings(w):
    return resolve_settings(config, w.task, w.condition, int(w.seed))


def features_path(w):
    s = run_settings(w)
    return f"{ROOT}/features/{w.task}/{model_tag(s['model'], s['max_seq_length'])}.pt"


def run_dir(task, condition, seed):
    return f"{ROOT}/runs/{task}/{condition}/seed{seed}"


RUN_RECORDS = [f"{run_dir(t, c, s)}/record.json" for t, c, s in GRID]
