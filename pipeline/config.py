"""The study's configuration: loading with overlays, one schema with messages that name the key
path and the allowed values, condition resolution (base <- task <- condition), sweep expansion, and
the run grid. Import-light (no torch), so Snakemake can plan without the model.
"""
from __future__ import annotations

import copy
import math
import difflib
import hashlib
import itertools
import json
from pathlib import Path

import yaml

from .tasks import ALIASES, TASKS, TRAIN_ROWS, canonical_task


# Names that become paths, wildcards or command-line words (study, dataset, condition, task): letters,
# digits, '_', '.', '-', not starting with a dot (so never '..', never a hidden file, never a shell word).
SAFE_NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"


class ConfigError(ValueError):
    """Invalid configuration; `errors` lists every problem found, each naming its key path."""

    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("invalid configuration:\n  - " + "\n  - ".join(errors))


# ---- schema -------------------------------------------------------------------------------

def _num(lo=None, hi=None, lo_open=False, hi_open=False, integer=False, nullable=False):
    def check(v):
        if v is None:
            return None if nullable else "must be set (null is not allowed here)"
        if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and not isinstance(v, int)):
            return f"must be {'an integer' if integer else 'a number'}, got {v!r}"
        if lo is not None and (v <= lo if lo_open else v < lo):
            return f"must be {'>' if lo_open else '>='} {lo}, got {v!r}"
        if hi is not None and (v >= hi if hi_open else v > hi):
            return f"must be {'<' if hi_open else '<='} {hi}, got {v!r}"
        return None
    return check


def _choice(*allowed, nullable=False):
    def check(v):
        if v is None and nullable:
            return None
        if v not in allowed:
            return f"must be one of {list(allowed)}, got {v!r}"
        return None
    return check


def _bool(v):
    return None if isinstance(v, bool) else f"must be true or false, got {v!r}"


def _str(v):
    return None if isinstance(v, str) and v else f"must be a non-empty string, got {v!r}"


def _task_or_null(v):
    if v is None:
        return None
    try:
        canonical_task(v)
    except ValueError as exc:
        return str(exc)
    return None


# Every key a run's settings may carry (base `train:`, `tasks:` overrides, conditions).
TRAIN_SCHEMA = {
    "model": _str,
    "lr": _num(0, lo_open=True),
    "batch_size": _num(1, integer=True),
    "epochs": _num(1, integer=True),
    "max_steps": _num(1, integer=True, nullable=True),
    "warmup_ratio": _num(0, 1, hi_open=True),
    "weight_decay": _num(0),
    "prior_wd": _num(0),
    "max_grad_norm": _num(0, lo_open=True),
    "adam_eps": _num(0, lo_open=True),
    "adam_beta1": _num(0, 1, hi_open=True),
    "adam_beta2": _num(0, 1, hi_open=True),
    "bias_correction": _bool,
    "max_seq_length": _num(8, 512, integer=True),
    "dropout": _num(0, 1, hi_open=True, nullable=True),
    "reinit_layers": _num(0, 48, integer=True),
    "reinit_pooler": _bool,
    "mixout_p": _num(0, 1, hi_open=True),
    "llrd_eta": _num(0, 1, lo_open=True),
    "intermediate_task": _task_or_null,
    "num_evals": _num(1, integer=True),
    "micro_batch_tokens": _num(0, integer=True),
    "compact_embeddings": _bool,
    "cls_only_top_layer": _bool,
    "eval_batch_tokens": _num(1, integer=True),
    "attn_implementation": _choice("sdpa", "eager"),
    "device": _choice("auto", "cpu", "cuda"),
    "amp": _bool,
    "save_checkpoint": _bool,
    "update_log_steps": _num(0, integer=True),
    "init_seed": _num(0, integer=True, nullable=True),
    "data_seed": _num(0, integer=True, nullable=True),
}
# Condition-only keys.
CONDITION_META = {"description", "select"}
# Sweep keys and the short tag that names an expanded member.
SWEEP_TAGS = {"reinit_layers": "L", "max_steps": "steps", "mixout_p": "p", "prior_wd": "pwd",
              "weight_decay": "wd", "llrd_eta": "eta", "lr": "lr", "epochs": "ep",
              "init_seed": "init", "data_seed": "data"}  # fixed seeds: the two-seed grid (Fig. 9/10)

SPLIT_SCHEMA = {
    "split_seed": _num(0, integer=True),
    "subset_seed": _num(0, integer=True),
    "train_size": _num(2, integer=True, nullable=True),
    "val_source": _choice("dev_half", "train"),
    "val_size": _num(1, integer=True, nullable=True),
    "test_size": _num(1, integer=True, nullable=True),
    "regression_bin_width": _num(0),
}

TOP_KEYS = {"study", "data", "splits", "train", "tasks", "conditions", "seeds", "grid", "evaluation",
            "analysis", "intermediate", "datasets"}


def _unknown(path: str, key, allowed) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{path}.{key}: unknown key{hint}; allowed: {', '.join(sorted(allowed))}"


def _check_block(block, schema, path, errors, allow_lists=False, extra=()):
    if not isinstance(block, dict):
        errors.append(f"{path}: must be a mapping, got {block!r}")
        return
    for key, value in block.items():
        if key in extra:
            continue
        if key not in schema:
            errors.append(_unknown(path, key, list(schema) + list(extra)))
            continue
        values = value if (allow_lists and isinstance(value, list)) else [value]
        if allow_lists and isinstance(value, list):
            if key not in SWEEP_TAGS:
                errors.append(f"{path}.{key}: only {sorted(SWEEP_TAGS)} may be swept (given a list)")
                continue
            if not value:
                errors.append(f"{path}.{key}: a sweep needs at least one value")
            if len(set(map(repr, value))) != len(value):
                errors.append(f"{path}.{key}: sweep values repeat: {value}")
        for v in values:
            msg = schema[key](v)
            if msg:
                errors.append(f"{path}.{key}: {msg}")


def validate(cfg: dict) -> list[str]:
    """Every problem in a merged configuration, each naming its key path and the allowed values."""
    errors: list[str] = []
    for key in cfg:
        if key not in TOP_KEYS:
            errors.append(_unknown("config", key, TOP_KEYS))
    for key in ("study", "data", "splits", "train", "conditions", "seeds", "grid", "evaluation", "analysis"):
        if key not in cfg:
            errors.append(f"{key}: missing section")
    if errors:
        return errors
    study = cfg["study"]
    for key in study:
        if key not in ("name", "tasks", "finetune_threads"):
            errors.append(_unknown("study", key, ["name", "tasks", "finetune_threads"]))
    msg = _num(1, 256, integer=True)(study.get("finetune_threads", 1))
    if msg:
        errors.append(f"study.finetune_threads: {msg}")
    if not isinstance(study.get("name"), str) or not study["name"].replace("-", "").replace("_", "").isalnum():
        errors.append(f"study.name: must be a short name of letters, digits, '-' or '_', got {study.get('name')!r}")
    tasks = study.get("tasks") or []
    if not tasks:
        errors.append("study.tasks: must list at least one task; allowed: " + ", ".join(TASKS))
    datasets = cfg.get("datasets") or {}
    for name, d in datasets.items():
        if not isinstance(d, dict) or "task" not in d:
            errors.append(f"datasets.{name}: must give the GLUE task it is made from (task: ...)")
            continue
        if _task_or_null(d["task"]):
            errors.append(f"datasets.{name}.task: {_task_or_null(d['task'])}")
        for key in d:
            if key not in ("task", "splits"):
                errors.append(_unknown(f"datasets.{name}", key, ["task", "splits"]))
        _check_block(d.get("splits") or {}, SPLIT_SCHEMA, f"datasets.{name}.splits", errors)
    for i, t in enumerate(tasks):
        if t in datasets:
            continue
        try:
            canonical_task(t)
        except ValueError as exc:
            errors.append(f"study.tasks[{i}]: {exc} (or a name defined under datasets:)")
    _check_block(cfg["splits"], {**SPLIT_SCHEMA, "tasks": lambda v: None}, "splits", errors)
    for t, over in (cfg["splits"].get("tasks") or {}).items():
        _check_block(over, SPLIT_SCHEMA, f"splits.tasks.{t}", errors)
    missing = [k for k in TRAIN_SCHEMA if k not in cfg["train"]]
    if missing:
        errors.append(f"train: every key must be set explicitly; missing: {', '.join(missing)}")
    _check_block(cfg["train"], TRAIN_SCHEMA, "train", errors)
    for t, over in (cfg.get("tasks") or {}).items():
        if t not in datasets and _task_or_null(t):
            errors.append(f"tasks.{t}: {_task_or_null(t)}")
        _check_block(over, TRAIN_SCHEMA, f"tasks.{t}", errors)
    conds = cfg["conditions"] or {}
    for name, over in conds.items():
        if not isinstance(name, str) or not name.replace("_", "").isalnum():
            errors.append(f"conditions.{name}: names are letters, digits and '_'")
        _check_block(over or {}, TRAIN_SCHEMA, f"conditions.{name}", errors, allow_lists=True,
                     extra=CONDITION_META)
        sel = (over or {}).get("select")
        if sel is not None and sel not in conds:
            errors.append(f"conditions.{name}.select: {sel!r} is not a condition; allowed: {', '.join(conds)}")
    seeds = cfg["seeds"]
    if not isinstance(seeds, dict) or not seeds:
        errors.append("seeds: must map seed-set names to lists of seeds")
        seeds = {}
    for name, lst in seeds.items():
        if not isinstance(lst, list) or not lst:
            errors.append(f"seeds.{name}: must be a non-empty list of seeds")
            continue
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in lst):
            errors.append(f"seeds.{name}: seeds must be non-negative integers, got {lst}")
        dup = sorted({s for s in lst if lst.count(s) > 1})
        if dup:
            errors.append(f"seeds.{name}: duplicate seeds {dup}")
    conditions_ok = not any(e.startswith("conditions") for e in errors)
    expanded = expand_conditions(conds) if conditions_ok else {}
    families = sweep_families(conds) if conditions_ok else {}
    grid = cfg["grid"]
    if not isinstance(grid, list) or not grid:
        errors.append("grid: must be a non-empty list of {tasks, conditions, seeds} blocks")
        grid = []
    for i, block in enumerate(grid):
        path = f"grid[{i}]"
        if not isinstance(block, dict):
            errors.append(f"{path}: must be a mapping")
            continue
        for key in block:
            if key not in ("tasks", "conditions", "seeds"):
                errors.append(_unknown(path, key, ["tasks", "conditions", "seeds"]))
        for t in block.get("tasks") or []:
            if t not in tasks:
                errors.append(f"{path}.tasks: {t!r} is not in study.tasks {tasks}")
        for c in block.get("conditions") or []:
            if c not in expanded and c not in families:
                errors.append(f"{path}.conditions: unknown condition {c!r}; allowed: "
                              f"{', '.join(sorted(set(expanded) | set(families)))}")
        if block.get("seeds") not in seeds:
            errors.append(f"{path}.seeds: {block.get('seeds')!r} is not a seed set; allowed: {', '.join(seeds)}")
    inter = cfg.get("intermediate") or {}
    for key in inter:
        if key != "train":
            errors.append(_unknown("intermediate", key, ["train"]))
    _check_block(inter.get("train") or {}, TRAIN_SCHEMA, "intermediate.train", errors)
    ev = cfg["evaluation"]
    for t, m in (ev.get("selection_metric") or {}).items():
        if t in TASKS and m not in TASKS[t].metrics:
            errors.append(f"evaluation.selection_metric.{t}: {m!r} not computed for {t}; allowed: "
                          f"{list(TASKS[t].metrics)}")
    # train_size against the data, per task
    for t in tasks:
        try:
            ct = glue_task_of(cfg, t)
        except (ValueError, KeyError, TypeError):
            continue
        sp = split_settings(cfg, dataset_name(cfg, t))
        n = sp.get("train_size")
        need = (n or 0) + (sp.get("val_size") or 0 if sp.get("val_source") == "train" else 0)
        if n is not None and need > TRAIN_ROWS[ct]:
            errors.append(f"splits.train_size: {n} (+ validation {need - n}) is larger than {ct}'s "
                          f"training set ({TRAIN_ROWS[ct]} rows)")
    if not errors:
        errors += _check_grid_runs(cfg)
        errors += _check_analysis(cfg, expanded, families)
    return errors


def _check_grid_runs(cfg) -> list[str]:
    errors = []
    for t, cond, _seed in run_grid(cfg):
        s = resolve_settings(cfg, t, cond, 0)
        if s["max_steps"] is None and s["epochs"] is None:
            errors.append(f"conditions.{cond}: needs epochs or max_steps")
    sel = set(cfg["analysis"].get("selection_seeds") or [])
    report = set(cfg["analysis"].get("report_seeds") or [])
    if sel and report and cfg["analysis"].get("disjoint_selection", True):
        for s_name in sel:
            for r_name in report:
                both = sorted(set(cfg["seeds"].get(s_name, [])) & set(cfg["seeds"].get(r_name, [])))
                if both:
                    errors.append(f"seeds.{s_name} and seeds.{r_name}: selection seeds overlap report seeds "
                                  f"{both} (analysis.disjoint_selection is true)")
    return errors


def _nonneg_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _check_analysis(cfg, expanded, families) -> list[str]:
    errors = []
    known = set(expanded) | set(families)
    for i, comp in enumerate(cfg["analysis"].get("comparisons") or []):
        for side in ("baseline", "treatment"):
            if comp.get(side) not in known:
                errors.append(f"analysis.comparisons[{i}].{side}: unknown condition {comp.get(side)!r}; "
                              f"allowed: {', '.join(sorted(known))}")
        if comp.get("expect") not in (None, "better", "no_gain"):
            errors.append(f"analysis.comparisons[{i}].expect: {comp['expect']!r}; allowed: better, no_gain")
        if "margin" in comp and not _nonneg_number(comp["margin"]):
            errors.append(f"analysis.comparisons[{i}].margin: {comp['margin']!r}; allowed: a number >= 0")
    margin = cfg["analysis"].get("equivalence_margin")
    if margin is not None and not _nonneg_number(margin):
        errors.append(f"analysis.equivalence_margin: {margin!r}; allowed: a number >= 0 (metric units, 0-1 scale)")
    for tname, table in (cfg["analysis"].get("tables") or {}).items():
        for col, cond in (table.get("columns") or {}).items():
            if cond not in known:
                errors.append(f"analysis.tables.{tname}.columns.{col}: unknown condition {cond!r}; "
                              f"allowed: {', '.join(sorted(known))}")
    return errors


# ---- loading ------------------------------------------------------------------------------

def deep_merge(base: dict, over: dict) -> dict:
    """Snakemake's configfile semantics: mappings merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def load_config(paths, check: bool = True) -> dict:
    cfg: dict = {}
    for p in paths:
        text = Path(p).read_text()
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise ConfigError([f"{p}: not valid YAML: {exc}"])
        cfg = deep_merge(cfg, data)
    if check:
        errors = validate(cfg)
        if errors:
            raise ConfigError(errors)
    return cfg


def cmd_validate(a):
    """`python -m pipeline validate --config params.yaml [overlays]`: every problem, each naming its file."""
    cfg = load_config(a.config)
    grid = run_grid(cfg)
    print(f"config OK: study {cfg['study']['name']!r} -> {study_root(cfg)}/, {len(grid)} runs")


# ---- resolution -----------------------------------------------------------------------------

def study_root(cfg: dict) -> str:
    name = cfg["study"]["name"]
    return "results" if name == "default" else f"results/{name}"


def _member_name(name: str, combo: dict) -> str:
    return name + "".join(f"-{SWEEP_TAGS[k]}{v:g}" if isinstance(v, float) else f"-{SWEEP_TAGS[k]}{v}"
                          for k, v in combo.items())


def expand_conditions(conditions: dict) -> dict:
    """Named conditions with sweeps expanded: a list value makes one member per value (the product
    over several swept keys), named <condition>-<tag><value>, e.g. reinit_sweep-L3."""
    out = {}
    for name, over in (conditions or {}).items():
        over = dict(over or {})
        swept = {k: v for k, v in over.items() if isinstance(v, list)}
        fixed = {k: v for k, v in over.items() if not isinstance(v, list)}
        if not swept:
            out[name] = fixed
            continue
        for values in itertools.product(*swept.values()):
            combo = dict(zip(swept, values))
            out[_member_name(name, combo)] = {**fixed, **combo, "family": name}
    return out


_EXPANDED: dict = {}


def _expanded_cached(cfg: dict) -> dict:
    """expand_conditions memoised on the conditions' canonical text (planning resolves thousands of runs)."""
    key = json.dumps(cfg["conditions"], sort_keys=True, default=str)
    if key not in _EXPANDED:
        _EXPANDED[key] = expand_conditions(cfg["conditions"])
    return _EXPANDED[key]


def sweep_families(conditions: dict) -> dict:
    """{family name: [member names]} for conditions that sweep."""
    fam: dict = {}
    for member, over in expand_conditions(conditions).items():
        if "family" in over:
            fam.setdefault(over["family"], []).append(member)
    return fam


def run_grid(cfg: dict) -> list[tuple[str, str, int]]:
    """Every (task, condition, seed) the study runs, in a stable order, without repeats."""
    families = sweep_families(cfg["conditions"])
    seen, out = set(), []
    for block in cfg["grid"]:
        conds = []
        for c in block["conditions"]:
            conds += families.get(c, [c])
        for t in block["tasks"]:
            for c in conds:
                for s in cfg["seeds"][block["seeds"]]:
                    key = (dataset_name(cfg, t), c, int(s))
                    if key not in seen:
                        seen.add(key)
                        out.append(key)
    return out


def dataset_name(cfg: dict, name: str) -> str:
    """A study's dataset: a GLUE task (canonical spelling) or a name under `datasets:` (e.g. rte_1k)."""
    return name if name in (cfg.get("datasets") or {}) else canonical_task(name)


def glue_task_of(cfg: dict, name: str) -> str:
    """The GLUE task a dataset is made from."""
    d = (cfg.get("datasets") or {}).get(name)
    return canonical_task(d["task"] if d else name)


def split_settings(cfg: dict, dataset: str) -> dict:
    """base splits <- splits.tasks[GLUE task] <- datasets[dataset].splits."""
    base = {k: v for k, v in cfg["splits"].items() if k != "tasks"}
    glue = glue_task_of(cfg, dataset)
    over = (cfg["splits"].get("tasks") or {}).get(glue) or {}
    ds = ((cfg.get("datasets") or {}).get(dataset) or {}).get("splits") or {}
    return {**base, **over, **ds}


def resolve_settings(cfg: dict, task: str, condition: str, seed: int) -> dict:
    """A run's complete settings: base <- tasks[GLUE task] <- tasks[dataset] <- condition, plus
    identity and metrics. `task` is a dataset name (a GLUE task or a `datasets:` entry)."""
    dataset = dataset_name(cfg, task)
    task = glue_task_of(cfg, dataset)
    conds = _expanded_cached(cfg)
    if condition not in conds:
        raise ConfigError([f"condition {condition!r} is not defined; allowed: {', '.join(sorted(conds))}"])
    s = dict(cfg["train"])
    s.update((cfg.get("tasks") or {}).get(task) or {})
    if dataset != task:
        s.update((cfg.get("tasks") or {}).get(dataset) or {})
    over = {k: v for k, v in conds[condition].items() if k not in CONDITION_META and k != "family"}
    s.update(over)
    s["select"] = conds[condition].get("select")  # chosen on validation at run time (select stage)
    ev = cfg["evaluation"]
    s["task"], s["glue_task"], s["condition"], s["seed"] = dataset, task, condition, int(seed)
    s["init_seed"] = int(seed) if s.get("init_seed") is None else s["init_seed"]
    s["data_seed"] = int(seed) if s.get("data_seed") is None else s["data_seed"]
    s["selection_metric"] = (ev.get("selection_metric") or {}).get(task, TASKS[task].selection_metric)
    s["report_metric"] = (ev.get("report_metric") or {}).get(task, TASKS[task].report_metric)
    return s


def intermediate_settings(cfg: dict, task: str, seed: int) -> dict:
    """Settings of the intermediate-task run (fine-tuned once per seed, reused by every target task):
    base <- tasks[task] <- intermediate.train; its checkpoint is saved."""
    task = canonical_task(task)
    s = dict(cfg["train"])
    s.update((cfg.get("tasks") or {}).get(task) or {})
    s.update((cfg.get("intermediate") or {}).get("train") or {})
    s.update(task=task, glue_task=task, condition="intermediate", seed=int(seed), select=None, intermediate_task=None,
             save_checkpoint=True, init_seed=int(seed), data_seed=int(seed))
    s["selection_metric"] = (cfg["evaluation"].get("selection_metric") or {}).get(task, TASKS[task].selection_metric)
    s["report_metric"] = (cfg["evaluation"].get("report_metric") or {}).get(task, TASKS[task].report_metric)
    return s


def canonical(obj) -> str:
    """One canonical JSON string (sorted keys, no spaces): Snakemake compares rule params by it."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(canonical(cfg).encode()).hexdigest()[:16]


def model_tag(name: str, max_len: int) -> str:
    """A file-name-safe tag for (model, max_seq_length); Hub ids and folders get a short hash."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name.strip("/").split("/")[-1])
    if "/" in name:
        safe += "-" + hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe}-{max_len}"


__all__ = ["ConfigError", "load_config", "validate", "resolve_settings", "run_grid", "expand_conditions",
           "sweep_families", "study_root", "canonical", "config_hash", "deep_merge", "split_settings",
           "model_tag", "ALIASES"]
