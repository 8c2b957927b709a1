"""The study's configuration: loading with overlays, one schema with messages that name the key
path and the allowed values, condition resolution (base <- task <- condition), sweep expansion, and
the run grid. Import-light (no torch), so Snakemake can plan without the model.
"""
from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import re
import hashlib
import itertools
import json
from pathlib import Path

import yaml

from .errors import ConfigError
from .tasks import ALIASES, TASKS, TRAIN_ROWS, canonical_task


# Names that become paths, wildcards or command-line words (study, dataset, condition, task): letters,
# digits, '_', '.', '-', starting with a letter, digit or '_' (so never '..', never a hidden file, never an
# option such as -rf, never a shell word). The schema's `name` pattern is the same.
SAFE_NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
# Study names that would nest a study inside the default study's own folders (results/runs/runs/...).
RESERVED_STUDY_NAMES = {"data", "splits", "features", "runs", "intermediate", "selection", "summary", "stats",
                        "tables", "figures", "logs", "engine", "benchmarks"}


# ---- schema -------------------------------------------------------------------------------

SCHEMA_FILE = Path(__file__).with_name("schema.yaml")


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    """pipeline/schema.yaml, with the two definitions it derives from run_settings (see its header)."""
    s = yaml.safe_load(SCHEMA_FILE.read_text())
    run = s["$defs"]["run_settings"]
    props = run["properties"]
    s["$defs"]["run_overrides"] = {"type": "object", "additionalProperties": False, "properties": props}
    cond = {}
    for key, spec in props.items():
        if "x-sweep" in spec:
            cond[key] = {"anyOf": [spec, {"type": "array", "minItems": 1, "uniqueItems": True, "items": spec}]}
        else:
            cond[key] = spec
    cond["description"] = {"type": "string"}
    cond["select"] = {"type": "string"}
    s["$defs"]["condition"] = {"type": ["object", "null"], "additionalProperties": False, "properties": cond}
    recipe = {k: v for k, v in props.items() if k != "model"}
    recipe["tasks"] = {"type": "object", "additionalProperties": {"$ref": "#/$defs/run_overrides"}}
    s["$defs"]["model_recipe"] = {"type": "object", "additionalProperties": False, "properties": recipe}
    return s


def run_setting_keys() -> list[str]:
    """Every key of a run's settings (the `train:` section), in the schema's order."""
    return list(schema()["$defs"]["run_settings"]["properties"])


def sweep_tags() -> dict:
    """{run setting: tag} for the settings a condition may sweep (x-sweep in schema.yaml)."""
    return {k: v["x-sweep"] for k, v in schema()["$defs"]["run_settings"]["properties"].items() if "x-sweep" in v}


# Condition-only keys.
CONDITION_META = {"description", "select"}


@functools.lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator, validators

    def is_integer(_checker, inst):  # 16.0 is not a batch size
        return isinstance(inst, int) and not isinstance(inst, bool)

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", is_integer)
    cls = validators.extend(Draft202012Validator, type_checker=checker)
    return cls(schema())


def key_path(parts) -> str:
    """('grid', 0, 'seeds') -> 'grid[0].seeds'."""
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "config"


_TYPE_WORDS = {"number": "a number", "integer": "an integer", "string": "a string", "boolean": "true or false",
               "object": "a mapping", "array": "a list", "null": "null"}


def _unknown(path: str, key, allowed) -> str:
    close = difflib.get_close_matches(str(key), list(allowed), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    where = f"{path}.{key}" if path != "config" else str(key)  # a top-level section: its own name
    return f"{where}: unknown key{hint}; allowed: {', '.join(sorted(allowed))}"


def _bound(v) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def _schema_messages(err) -> list[tuple[tuple, str]]:
    """(key path, message) pairs for one jsonschema error: the key path, the value, what is allowed."""
    path = tuple(err.absolute_path)
    where = key_path(path)
    v, kind, arg, inst = err.validator_value, err.validator, err.validator_value, err.instance
    allowed = err.schema.get("description")
    if "propertyNames" in err.schema_path:  # a name (of a dataset, condition, seed set, table)
        return [(path + (inst,), f"{where}.{inst}: not a valid name; allowed: {allowed}")]
    if kind == "anyOf":  # a sweepable setting: report the branch the value was meant for
        branch = 1 if isinstance(inst, list) else 0
        subs = [e for e in err.context if e.relative_schema_path[0] == branch]
        out = []
        for e in subs:
            out += _schema_messages(e)
        return out[:1] or [(path, f"{where}: invalid value {inst!r}")]
    if kind == "additionalProperties":
        known = list((err.schema.get("properties") or {}))
        return [(path + (k,), _unknown(where, k, known)) for k in inst if k not in known]
    if kind == "required":  # a misspelt key is reported once, as the unknown key with its correction
        extra = [k for k in inst if k not in (err.schema.get("properties") or {})]
        return [(path + (k,), f"{key_path(path + (k,))}: missing key {k!r} (every key is set explicitly in params.yaml)")
                for k in arg if k not in inst and not difflib.get_close_matches(str(k), map(str, extra), n=1)]
    if kind == "propertyNames":
        name_schema = err.schema["propertyNames"]
        if "$ref" in name_schema:
            name_schema = schema()["$defs"][name_schema["$ref"].rsplit("/", 1)[1]]
        return [(path + (inst,), f"{where}.{inst}: not a valid name; allowed: {name_schema.get('description')}")]
    if kind == "type" and isinstance(inst, list) and len(path) == 3 and path[0] == "conditions":
        return [(path, f"{where}: only {', '.join(sorted(sweep_tags()))} may be swept (given a list {inst!r})")]
    if kind == "type":
        types = arg if isinstance(arg, list) else [arg]
        return [(path, f"{where}: must be {' or '.join(_TYPE_WORDS[t] for t in types)}, got {inst!r}")]
    if kind == "enum":
        return [(path, f"{where}: {inst!r} is not allowed; allowed: {', '.join(map(str, arg))}")]
    if kind in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[kind]
        return [(path, f"{where}: must be {op} {_bound(arg)}, got {inst!r}")]
    if kind == "minItems":
        return [(path, f"{where}: must list at least {arg} item{'s' if arg > 1 else ''}, got {inst!r}")]
    if kind == "minProperties":
        return [(path, f"{where}: must not be empty")]
    if kind == "uniqueItems":
        seen, dup = [], []
        for x in inst:
            (dup if x in seen and x not in dup else seen).append(x)
        return [(path, f"{where}: values repeat: {dup}")]
    if kind in ("pattern", "maxLength", "minLength") and allowed:
        return [(path, f"{where}: {inst!r} is not allowed; allowed: {allowed}")]
    if kind == "minLength":
        return [(path, f"{where}: must not be empty")]
    return [(path, f"{where}: {err.message}")]


def _non_finite(node, path=()) -> list[tuple[tuple, str]]:
    """(path, message) for every NaN or infinite number anywhere (a schema's bounds let NaN through)."""
    if isinstance(node, float) and not math.isfinite(node):
        return [(path, f"{key_path(path)}: must be a finite number, got {node!r}")]
    if isinstance(node, dict):
        return [m for k, v in node.items() for m in _non_finite(v, path + (k,))]
    if isinstance(node, list):
        return [m for i, v in enumerate(node) for m in _non_finite(v, path + (i,))]
    return []


def shape_errors(cfg) -> list[tuple[tuple, str]]:
    """(key path, message) for every shape problem, one per key path: the schema, then finiteness."""
    if not isinstance(cfg, dict):
        return [((), f"config: must be a mapping of sections, got {type(cfg).__name__}")]
    found: dict[tuple, str] = {}
    for path, msg in _non_finite(cfg):
        found.setdefault(path, msg)
    errors = sorted(_validator().iter_errors(cfg), key=lambda e: (list(map(str, e.absolute_path)), e.validator))
    for err in errors:
        for path, msg in _schema_messages(err):
            if not any(path[:i] in found for i in range(len(path))):  # nothing under a broken parent
                found.setdefault(path, msg)
    return list(found.items())


# ---- what a schema cannot say ---------------------------------------------------------------
# Each check reads some sections; it runs only when every one of them passed its shape, so one mistake
# gives one message.

_CHECKS: list = []


def _check(*sections):
    def register(fn):
        _CHECKS.append((sections, fn))
        return fn
    return register


def _glue_or_error(name) -> str | None:
    try:
        canonical_task(name)
    except ValueError as exc:
        return str(exc)
    return None


def _datasets(cfg) -> dict:
    return cfg["datasets"]


@_check("study", "datasets")
def _check_study_tasks(cfg):
    ds = _datasets(cfg)
    if cfg["study"]["name"] in RESERVED_STUDY_NAMES:
        yield (f"study.name: {cfg['study']['name']!r} is a folder of the default study's results "
               f"(results/{cfg['study']['name']}/); reserved: {', '.join(sorted(RESERVED_STUDY_NAMES))}")
    for i, t in enumerate(cfg["study"]["tasks"]):
        if t not in ds and _glue_or_error(t):
            yield f"study.tasks[{i}]: {_glue_or_error(t)} (or a name defined under datasets:)"


@_check("datasets")
def _check_datasets(cfg):
    glue_names = set(TASKS) | set(ALIASES)
    for name, d in _datasets(cfg).items():
        if name.lower() in glue_names:
            yield (f"datasets.{name}: shadows the GLUE task {canonical_task(name)!r}; name the variant "
                   f"differently (e.g. {name}_1k)")
        elif _glue_or_error(d["task"]):
            yield f"datasets.{name}.task: {_glue_or_error(d['task'])}"


def _task_key_problem(path: str, t, datasets=None) -> str | None:
    """A per-task key must be a GLUE task in its canonical spelling (or, where allowed, a dataset name):
    resolution looks keys up by that spelling, so 'stsb' or 'STS-B' would be accepted and then ignored."""
    if datasets is not None and t in datasets:
        return None
    if _glue_or_error(t):
        return f"{path}.{t}: {_glue_or_error(t)}" + (" (or a name defined under datasets:)" if datasets is not None else "")
    if t != canonical_task(t):
        return f"{path}.{t}: write {canonical_task(t)!r}, the task's canonical spelling ({t!r} would be ignored)"
    return None


@_check("tasks", "models", "datasets")
def _check_task_overrides(cfg):
    for t in cfg["tasks"]:
        msg = _task_key_problem("tasks", t, _datasets(cfg))
        if msg:
            yield msg
    for m, recipe in cfg["models"].items():
        for t in recipe.get("tasks") or {}:
            msg = _task_key_problem(f"models.{m}.tasks", t, _datasets(cfg))
            if msg:
                yield msg


def _leaf_paths(node, path=()):
    if isinstance(node, dict) and node:
        for k, v in node.items():
            yield from _leaf_paths(v, path + (k,))
    else:
        yield path


@_check(*schema()["required"])  # names keys of any section: only once every section has its shape
def _check_shared(cfg):
    paths = {key_path(p) for p in _leaf_paths(cfg)} | {key_path(p[:i]) for p in _leaf_paths(cfg) for i in range(1, len(p))}
    for i, key in enumerate(cfg["shared_with_overlays"]):
        if key not in paths:
            close = difflib.get_close_matches(key, sorted(paths), n=1)
            yield (f"shared_with_overlays[{i}]: {key!r} is not a key of the configuration"
                   + (f" (did you mean {close[0]!r}?)" if close else ""))


@_check("splits", "evaluation", "analysis")
def _check_per_task_keys(cfg):
    for path, mapping in (("splits.tasks", cfg["splits"]["tasks"]),
                          ("evaluation.selection_metric", cfg["evaluation"]["selection_metric"]),
                          ("evaluation.report_metric", cfg["evaluation"]["report_metric"]),
                          ("analysis.degenerate.rules", cfg["analysis"]["degenerate"]["rules"])):
        for t, value in mapping.items():
            msg = _task_key_problem(path, t)
            if msg:
                yield msg
            elif path.startswith("evaluation") and value not in TASKS[canonical_task(t)].metrics:
                yield (f"{path}.{t}: {value!r} is not computed for {canonical_task(t)}; allowed: "
                       f"{', '.join(TASKS[canonical_task(t)].metrics)}")


@_check("data", "study", "datasets")
def _check_data(cfg):
    glue_dir = cfg["data"]["glue_dir"]
    if glue_dir is None:
        env = os.environ.get("GLUE_DIR")
        if env and not Path(env).is_dir():
            yield f"data.glue_dir: null reads $GLUE_DIR, and GLUE_DIR={env!r} is not an existing folder"
        return
    if not Path(glue_dir).is_dir():
        yield f"data.glue_dir: {glue_dir!r} is not an existing folder (null: $GLUE_DIR, else the Hub)"
        return
    glue = sorted({glue_task_of(cfg, t) for t in cfg["study"]["tasks"] if t in _datasets(cfg) or not _glue_or_error(t)})
    missing = [TASKS[g].folder for g in glue if not (Path(glue_dir) / TASKS[g].folder).is_dir()]
    if missing:
        yield (f"data.glue_dir: {glue_dir!r} has no {', '.join(missing)} folder (GLUE's layout: "
               f"<glue_dir>/RTE/train.tsv, ...)")


@_check("conditions")
def _check_conditions(cfg):
    conds = cfg["conditions"]
    families = {n for n, over in conds.items() if any(isinstance(v, list) for v in (over or {}).values())}
    expanded = expand_conditions(conds)
    selectors: dict = {}
    for name, over in conds.items():
        sel = (over or {}).get("select")
        if sel is None:
            continue
        if sel not in conds:
            yield f"conditions.{name}.select: {sel!r} is not a condition; allowed (sweeps): {', '.join(sorted(families))}"
        elif name in families:
            yield f"conditions.{name}: a condition that selects from {sel!r} cannot sweep itself"
        elif sel not in families:
            selectors.setdefault(sel, []).append(name)
    for sel, names in selectors.items():  # one message per condition that should sweep
        yield (f"conditions.{sel}: sweeps nothing (no list value), but {', '.join(names)} select{'s' if len(names) == 1 else ''} "
               f"from it; allowed (sweeps): {', '.join(sorted(families)) or 'none defined'}")
    clash = sorted(set(conds) & {m for m, over in expanded.items() if "family" in over})
    for m in clash:
        yield f"conditions.{m}: the name of a sweep member ({expanded[m]['family']}); rename it"
    for name in sorted(families):  # two values that print alike would make one member (a run lost)
        swept = {k: v for k, v in conds[name].items() if isinstance(v, list)}
        names = [_member_name(name, dict(zip(swept, vs))) for vs in itertools.product(*swept.values())]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            yield (f"conditions.{name}: values that name the same member {dup}; make them differ in their "
                   f"first 6 significant digits")


@_check("grid", "study", "conditions", "seeds", "datasets")
def _check_grid(cfg):
    tasks = cfg["study"]["tasks"]
    known = _known_conditions(cfg)
    families = sweep_families(cfg["conditions"])
    expanded = _expanded_cached(cfg)
    bad: dict = {}  # one message per wrong value, listing where it is used
    for i, block in enumerate(cfg["grid"]):
        for j, t in enumerate(block["tasks"]):
            if t not in tasks:
                bad.setdefault(("tasks", t), []).append(f"grid[{i}].tasks[{j}]")
        for j, c in enumerate(block["conditions"]):
            if c not in known:
                bad.setdefault(("conditions", c), []).append(f"grid[{i}].conditions[{j}]")
        if block["seeds"] not in cfg["seeds"]:
            bad.setdefault(("seeds", block["seeds"]), []).append(f"grid[{i}].seeds")
    for (kind, value), where in bad.items():
        also = f" (also {', '.join(where[1:])})" if len(where) > 1 else ""
        if kind == "tasks":
            yield f"{where[0]}: {value!r} is not in study.tasks{also}; allowed: {', '.join(tasks)}"
        elif kind == "conditions":
            yield f"{where[0]}: unknown condition {value!r}{also}; allowed: {', '.join(sorted(known))}"
        else:
            yield f"{where[0]}: {value!r} is not a seed set{also}; allowed: {', '.join(cfg['seeds'])}"
    if bad:
        return
    # a selected condition needs its sweep's runs on the same dataset, at least two candidates of them
    ran = {(t, c) for t, c, _s in run_grid(cfg)}
    selecting: dict = {}
    for t, c in sorted(ran):
        if expanded[c].get("select"):
            selecting.setdefault((t, expanded[c]["select"]), []).append(c)
    for (t, sel), conds in selecting.items():  # one message per sweep and dataset
        who = " and ".join(repr(c) for c in conds)
        candidates = [m for m in families.get(sel, []) if (t, m) in ran]
        if not candidates:
            yield (f"grid: {who} on {t!r} select{'s' if len(conds) == 1 else ''} from {sel!r}, but no grid block runs "
                   f"{sel!r} on {t!r}; add {{tasks: [{t}], conditions: [{sel}], seeds: <a selection seed set>}}")
        elif len(candidates) < 2:
            yield (f"grid: {who} on {t!r} select{'s' if len(conds) == 1 else ''} from {sel!r}, but the grid runs only "
                   f"{candidates[0]!r} of it on {t!r}: nothing to choose from; run the sweep ({sel}) or at least two "
                   f"of its members")


def _grid_problems_so_far(cfg, known):
    for block in cfg["grid"]:
        if (any(t not in cfg["study"]["tasks"] for t in block["tasks"]) or block["seeds"] not in cfg["seeds"]
                or any(c not in known for c in block["conditions"])):
            yield block


def _known_conditions(cfg) -> set:
    return set(_expanded_cached(cfg)) | set(sweep_families(cfg["conditions"]))


@_check("analysis", "conditions", "seeds", "grid")
def _check_analysis(cfg):
    a = cfg["analysis"]
    known = set(_expanded_cached(cfg))  # conditions that run (a sweep's name is not one: its members are)
    names = [comp["name"] for comp in a["comparisons"]]
    for i, comp in enumerate(a["comparisons"]):
        for side in ("baseline", "treatment"):
            if comp[side] not in known:
                yield (f"analysis.comparisons[{i}].{side}: unknown condition {comp[side]!r}; "
                       f"allowed: {', '.join(sorted(known))}")
        if comp["baseline"] == comp["treatment"]:
            yield f"analysis.comparisons[{i}]: baseline and treatment are both {comp['baseline']!r}"
        if names.index(comp["name"]) != i:
            yield (f"analysis.comparisons[{i}].name: {comp['name']!r} is also comparisons[{names.index(comp['name'])}]"
                   f"'s name; claims are keyed by it")
    for tname, table in a["tables"].items():
        for col, cond in table["columns"].items():
            if cond not in known:
                yield (f"analysis.tables.{tname}.columns.{col}: unknown condition {cond!r}; "
                       f"allowed: {', '.join(sorted(known))}")
    for key in ("selection_seeds", "report_seeds"):
        for i, name in enumerate(a[key]):
            if name not in cfg["seeds"]:
                yield f"analysis.{key}[{i}]: {name!r} is not a seed set; allowed: {', '.join(cfg['seeds'])}"
    if a["disjoint_selection"]:
        yield from _overlapping_selection(cfg)


def _overlapping_selection(cfg):
    """Selection on validation uses seeds no reported run uses: compared as the actual seed values the grid
    gives the selected sweeps' runs and the reported runs, per dataset (names of seed sets prove nothing)."""
    expanded = _expanded_cached(cfg)
    selected = {over["select"] for over in expanded.values() if over.get("select")}
    runs = run_grid(cfg)
    report = {}
    for t, c, s in runs:
        if "family" not in expanded[c] or expanded[c]["family"] not in selected:
            report.setdefault(t, set()).add(s)
    clash: dict = {}
    for t, c, s in runs:
        fam = expanded[c].get("family")
        if fam in selected and s in report.get(t, ()):
            clash.setdefault(fam, {}).setdefault(t, set()).add(s)
    for fam, per_task in clash.items():
        where = "; ".join(f"{t}: {sorted(seeds)}" for t, seeds in per_task.items())
        yield (f"grid: the runs that select {fam!r} on validation use seeds that reported runs also use ({where}), "
               f"and analysis.disjoint_selection is true: give the sweep its own seed set")


@_check("study", "datasets", "splits")
def _check_sizes(cfg):
    too_big: dict = {}
    for t in cfg["study"]["tasks"]:
        if t not in _datasets(cfg) and _glue_or_error(t):
            continue
        ds = dataset_name(cfg, t)
        ct = glue_task_of(cfg, ds)
        sp = split_settings(cfg, ds)
        n = sp["train_size"]
        need = (n or 0) + ((sp["val_size"] or 0) if sp["val_source"] == "train" else 0)
        if n is not None and need > TRAIN_ROWS[ct]:
            where = f"datasets.{ds}.splits" if ds in _datasets(cfg) else "splits"
            too_big.setdefault((where, n, need - n), []).append(f"{ct} ({TRAIN_ROWS[ct]} rows)")
    for (where, n, val), sets in too_big.items():
        yield f"{where}.train_size: {n} (+ validation {val}) is larger than the training set of {', '.join(sets)}"


@_check(*[s for s in schema()["required"]])
def _check_runs(cfg):
    """Each distinct run setting of the grid: steps, the intermediate stage (task, size, model), and the
    model's own limits read from its config.json where it is available locally (else the job checks at
    its start). Each problem is named by the key that set the value, once."""
    said, used_models = set(), set()
    for t, cond, seed in _distinct_runs(cfg):
        s = resolve_settings(cfg, t, cond, seed)
        used_models.add(s["model"])
        found = []
        it = s["intermediate_task"]
        if it is not None and _glue_or_error(it):
            found.append(f"{_source(cfg, t, cond, 'intermediate_task')}: {_glue_or_error(it)}")
        elif it is not None:
            si = intermediate_settings(cfg, it, seed)
            used_models.add(si["model"])
            if si["model"] != s["model"] or si["max_seq_length"] != s["max_seq_length"]:
                found.append(f"intermediate.train: the {it} stage trains {si['model']} at length "
                             f"{si['max_seq_length']}, but {cond} on {t} ({_source(cfg, t, cond, 'model')}) "
                             f"starts {s['model']} at length {s['max_seq_length']} from its weights")
            sp = split_settings(cfg, canonical_task(it))
            n = sp["train_size"]
            need = (n or 0) + ((sp["val_size"] or 0) if sp["val_source"] == "train" else 0)
            if n is not None and need > TRAIN_ROWS[canonical_task(it)]:
                found.append(f"splits.train_size: {n} (+ validation {need - n}) is larger than the training set of "
                             f"{canonical_task(it)} ({TRAIN_ROWS[canonical_task(it)]} rows), the intermediate task")
        folder = Path(s["model"]).expanduser()
        if folder.is_dir() and not (folder / "config.json").is_file():
            found.append(f"{_source(cfg, t, cond, 'model')}: {s['model']!r} is a folder without config.json "
                         f"(a local model folder holds config.json, the weights and the tokenizer)")
        else:
            for msg in _model_problems(s):
                key, rest = msg.split(": ", 1) if msg.startswith("train.") else ("", msg)
                src = _source(cfg, t, cond, key.split(".", 1)[1]) if key else f"{cond} on {t}"
                found.append(f"{src}: {rest}")
        for msg in found:
            if msg not in said:
                said.add(msg)
                yield msg
    for m in cfg["models"]:
        if m not in used_models:
            close = difflib.get_close_matches(m, sorted(used_models), n=1)
            yield (f"models.{m}: no run trains this model" + (f" (did you mean {close[0]!r}?)" if close else "")
                   + f"; models run: {', '.join(sorted(used_models))}")


def _source(cfg: dict, task: str, condition: str, key: str) -> str:
    """The key path that gave a run its value of `key` (the highest layer of resolve_settings that sets it)."""
    dataset = dataset_name(cfg, task)
    glue = glue_task_of(cfg, dataset)
    over = _expanded_cached(cfg)[condition]
    name = over.get("family", condition)
    own = cfg["conditions"].get(name) or {}
    if key in own:
        return f"conditions.{name}.{key}"
    model = own.get("model") or _base_settings(cfg, dataset, glue, None)["model"]
    recipe = cfg["models"].get(model) or {}
    for t in (dataset, glue):
        if key in ((recipe.get("tasks") or {}).get(t) or {}):
            return f"models.{model}.tasks.{t}.{key}"
    if key in recipe:
        return f"models.{model}.{key}"
    for t in (dataset, glue):
        if key in (cfg["tasks"].get(t) or {}):
            return f"tasks.{t}.{key}"
    return f"train.{key}"


def _distinct_runs(cfg):
    """One (dataset, condition, seed) per dataset and condition: a run's seed changes no setting checked."""
    seen = set()
    for t, c, s in run_grid(cfg):
        if (t, c) not in seen:
            seen.add((t, c))
            yield t, c, s


def _model_problems(s: dict) -> list[str]:
    try:
        from .architecture import local_model_config, model_problems
    except ImportError:  # pragma: no cover - the engine's architecture module is part of the package
        return []
    mc = local_model_config(s["model"])
    if mc is None:
        return []
    return model_problems(mc, model=s["model"], reinit_layers=s["reinit_layers"], reinit_pooler=s["reinit_pooler"],
                          llrd_eta=s["llrd_eta"], max_seq_length=s["max_seq_length"])


def validate(cfg: dict) -> list[str]:
    """Every problem in a merged configuration, once each, each naming its key path, the value and
    what is allowed: the shape (schema.yaml), then what a schema cannot say, per section that passed."""
    shape = shape_errors(cfg)
    if shape and not isinstance(cfg, dict):
        return [m for _, m in shape]
    broken = {p[0] if p else None for p, _ in shape}
    errors = [m for _, m in shape]
    for sections, fn in _CHECKS:
        if broken & set(sections) or None in broken:
            continue
        found = list(fn(cfg))
        errors += found
        if found:
            broken |= set(sections) if fn is not _check_runs else set()
    return errors


# ---- loading ------------------------------------------------------------------------------

def deep_merge(base: dict, over: dict) -> dict:
    """Snakemake's configfile semantics: mappings merge recursively, everything else replaces."""
    out = copy.deepcopy(base)
    for k, v in (over or {}).items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


class _StrictLoader(yaml.SafeLoader):
    """YAML as Snakemake reads it, but a key given twice in one mapping is an error (YAML keeps the last one
    silently), and so are the YAML 1.1 number forms that read differently from how they look: 010 is
    octal 8, 1:30 is 90 (sexagesimal), while 1e-4 (no dot) is the string '1e-4'."""


_YAML11_INT = re.compile(r"^[-+]?(0[0-7_]+|0b[01_]+|0x[0-9a-fA-F_]+|[1-9][0-9_]*(:[0-5]?[0-9])+)$")
_FLOAT_AS_STR = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")
MAX_NODES = 200_000  # a configuration is a few thousand values; anchors can expand far beyond that


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=True)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"key {key!r} given twice (first on line {seen[key] + 1}); YAML would keep the last",
                key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return yaml.SafeLoader.construct_mapping(loader, node, deep=deep)


def _construct_int(loader, node):
    if _YAML11_INT.match(node.value.replace(",", "")):
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} reads as {yaml.SafeLoader.construct_yaml_int(loader, node)} in YAML 1.1 "
            f"(octal, binary, hex or base 60): write the number in decimal, or quote it", node.start_mark)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


def _construct_str(loader, node):
    if node.style is None and _FLOAT_AS_STR.match(node.value):
        mantissa, exponent = re.split("[eE]", node.value)
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value} reads as a string in YAML: write {mantissa}.0e{exponent} for the number, "
            f"or quote it for a string", node.start_mark)
    return yaml.SafeLoader.construct_yaml_str(loader, node)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_StrictLoader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_StrictLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def _expanded_size(node, memo=None) -> int:
    """How many values a loaded document holds once its anchors are expanded (shared objects counted at
    every place they appear), computed without expanding them."""
    memo = {} if memo is None else memo
    if id(node) in memo:
        return memo[id(node)]
    memo[id(node)] = 1  # a cycle (recursive anchor) counts once
    if isinstance(node, dict):
        size = 1 + sum(_expanded_size(v, memo) for v in node.values())
    elif isinstance(node, list):
        size = 1 + sum(_expanded_size(v, memo) for v in node)
    else:
        size = 1
    memo[id(node)] = size
    return size


def read_overlay(path) -> dict:
    """One configuration file as a mapping of sections; any problem names the file (and line)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"])
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{path}: not a text file in UTF-8 (byte {exc.start}: {exc.reason})"])
    try:
        data = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}: not valid YAML: {problem}"])
    except RecursionError:
        raise ConfigError([f"{path}: nested too deeply to be a configuration"])
    if data is None:
        raise ConfigError([f"{path}: empty file; a configuration is a mapping of sections "
                           f"({', '.join(schema()['required'])})"])
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: must be a mapping of sections ({', '.join(schema()['required'][:4])}, ...), "
                           f"got a {type(data).__name__}"])
    if "__use_yte__" in data:  # Snakemake would evaluate the file's ?-expressions as Python
        raise ConfigError([f"{path}: __use_yte__: YTE templates run Python code when Snakemake reads the file; "
                           f"this project's configuration is plain YAML"])
    if _expanded_size(data) > MAX_NODES:
        raise ConfigError([f"{path}: more than {MAX_NODES:,} values once its anchors are expanded; "
                           f"a configuration is a few thousand"])
    return data


def _record_origins(origins: dict, node, file: str, path=(), containers=None) -> None:
    """origins[key path] = files that set it, in order; a replaced value forgets what it replaced.
    `containers`: the key paths recorded as mappings or lists (only those can have children to forget)."""
    containers = origins.setdefault("\0containers", set()) if containers is None else containers
    here = key_path(path)
    if isinstance(node, dict):
        origins.setdefault(here, []).append(file)
        containers.add(here)
        for k, v in node.items():
            _record_origins(origins, v, file, path + (k,), containers)
        return
    if here in containers:  # a mapping or list replaced: its children are not set by anyone now
        for old in [k for k in origins if k.startswith(here + ".") or k.startswith(here + "[")]:
            del origins[old]
            containers.discard(old)
        containers.discard(here)
    origins[here] = [file]
    if isinstance(node, list):
        containers.add(here)
        for i, v in enumerate(node):
            _record_origins(origins, v, file, path + (i,), containers)


def _blame(origins: dict, message: str) -> str | None:
    """The file a message's key path came from: the longest recorded key path the message starts with;
    the file that set it, or, where the message's own key is missing, the first file that set its
    parent (the base file)."""
    best = None
    for k in origins:
        if k != "\0containers" and any(message.startswith(k + sep) for sep in (": ", ".", "[", " ")):
            if best is None or len(k) > len(best):
                best = k
    if best is None:
        return None
    exact = any(message.startswith(best + sep) for sep in (": ", " "))
    return origins[best][-1] if exact else origins[best][0]


def merge_files(paths) -> tuple[dict, dict]:
    paths = list(paths)
    """params.yaml and overlays merged (Snakemake's semantics), and where each key path came from."""
    cfg: dict = {}
    origins: dict = {}
    problems = []
    for p in paths:
        try:
            data = read_overlay(p)
        except ConfigError as exc:
            problems += exc.errors
            continue
        required = schema()["required"]
        if not cfg and not set(required) <= set(data):
            missing = [s for s in required if s not in data]
            problems.append(f"{p}: not a complete configuration (no {', '.join(missing)}); give params.yaml "
                            f"first, then the overlays that change it")
        elif cfg and set(required) <= set(data):
            problems.append(f"{p}: a complete configuration given after {paths[0]}: it would replace every value "
                            f"of the files before it; give it first")
        cfg = deep_merge(cfg, data)
        _record_origins(origins, data, str(p))
    if problems:
        raise ConfigError(problems[:1] if len(paths) > 1 and "not a complete" in problems[0] else problems)
    return cfg, origins


def with_files(errors: list[str], origins: dict) -> list[str]:
    """Each message prefixed with the file its key came from."""
    out = []
    for e in errors:
        f = _blame(origins, e)
        out.append(f"{f}: {e}" if f else e)
    return out


def overlay_name_errors(paths, cfg: dict, origins: dict) -> list[str]:
    """An overlay study must name itself: results go to results/<study.name>/, and a name inherited from
    params.yaml would write over the default study's results (checked once the rest is valid)."""
    paths = [str(p) for p in paths]
    if len(paths) < 2 or set(origins.get(key_path(("study", "name")), [])) - {paths[0]}:
        return []
    return [f"{paths[-1]}: study.name: not set by an overlay (still {cfg['study']['name']!r}, from {paths[0]}): "
            f"an overlay study writes to results/<study.name>/, so without a name of its own it would "
            f"overwrite the default study's results; set study.name (to 'default' to mean it)"]


def load_config(paths, check: bool = True) -> dict:
    """params.yaml [overlays] merged and validated; a ConfigError lists every problem, each naming its file."""
    paths = list(paths)
    cfg, origins = merge_files(paths)
    if check:
        errors = with_files(validate(cfg), origins) or overlay_name_errors(paths, cfg, origins)
        if errors:
            raise ConfigError(errors)
    return cfg


def workflow_errors(config: dict, configfiles, overrides: dict | None = None) -> list[str]:
    """For the Snakefile: the problems of Snakemake's merged `config`, each named by the configuration
    file its key came from (`configfiles`: params.yaml and every --configfile, in order; `overrides`:
    Snakemake's --config values, named "--config")."""
    try:
        _, origins = merge_files(configfiles)
    except ConfigError as exc:
        return exc.errors
    if overrides:  # Snakemake reads nested --config values as strings: numbers there arrive as text
        _record_origins(origins, overrides, "--config (nested values are read as strings: use a --configfile)")
    return with_files(validate(config), origins) or overlay_name_errors(configfiles, config, origins)


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
    tags = sweep_tags()
    return name + "".join(f"-{tags[k]}{v:g}" if isinstance(v, float) else f"-{tags[k]}{v}" for k, v in combo.items())


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


def _swept_keys(cfg: dict, family: str) -> set:
    """The settings a sweep condition varies (its list values)."""
    return {k for k, v in (cfg["conditions"].get(family) or {}).items() if isinstance(v, list)}


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
    return name if name in cfg["datasets"] else canonical_task(name)


def glue_task_of(cfg: dict, name: str) -> str:
    """The GLUE task a dataset is made from."""
    d = cfg["datasets"].get(name)
    return canonical_task(d["task"] if d else name)


def split_settings(cfg: dict, dataset: str) -> dict:
    """base splits <- splits.tasks[GLUE task] <- datasets[dataset].splits."""
    base = {k: v for k, v in cfg["splits"].items() if k != "tasks"}
    glue = glue_task_of(cfg, dataset)
    over = cfg["splits"]["tasks"].get(glue) or {}
    ds = (cfg["datasets"].get(dataset) or {}).get("splits") or {}
    return {**base, **over, **ds}


def resolve_settings(cfg: dict, task: str, condition: str, seed: int) -> dict:
    """A run's complete settings: base <- tasks[GLUE task] <- tasks[dataset] <- models[model] (and its
    tasks) <- condition, plus identity and metrics. `task` is a dataset name (a GLUE task or a `datasets:` entry)."""
    dataset = dataset_name(cfg, task)
    task = glue_task_of(cfg, dataset)
    conds = _expanded_cached(cfg)
    if condition not in conds:
        raise ConfigError([f"condition {condition!r} is not defined; allowed: {', '.join(sorted(conds))}"])
    over = {k: v for k, v in conds[condition].items() if k not in CONDITION_META and k != "family"}
    s = _base_settings(cfg, dataset, task, over.get("model"))
    sel = conds[condition].get("select")
    if sel:  # what the selection decides is not the condition's to set (an overlay's selecting condition
        # may merge onto a fixed one of params.yaml): those keys keep their base values until the run
        # applies the chosen candidate
        swept = _swept_keys(cfg, sel)
        over = {k: v for k, v in over.items() if k not in swept}
    s.update(over)
    s["select"] = conds[condition].get("select")  # chosen on validation at run time (select stage)
    s["task"], s["glue_task"], s["condition"], s["seed"] = dataset, task, condition, int(seed)
    s["init_seed"] = int(seed) if s["init_seed"] is None else s["init_seed"]
    s["data_seed"] = int(seed) if s["data_seed"] is None else s["data_seed"]
    s["selection_metric"], s["report_metric"] = task_metrics(cfg, task)
    return s


def _base_settings(cfg: dict, dataset: str, task: str, model: str | None) -> dict:
    """train <- tasks[GLUE task] <- tasks[dataset] <- models[model] <- models[model].tasks[task, dataset]:
    a run's settings before its condition (or the intermediate run's own settings) apply. `model` is the
    condition's model if it sets one (a per-model recipe follows the model the run trains)."""
    s = dict(cfg["train"])
    for t in dict.fromkeys((task, dataset)):
        s.update(cfg["tasks"].get(t) or {})
    recipe = cfg["models"].get(model or s["model"]) or {}
    s.update({k: v for k, v in recipe.items() if k != "tasks"})
    for t in dict.fromkeys((task, dataset)):
        s.update((recipe.get("tasks") or {}).get(t) or {})
    return s


def intermediate_settings(cfg: dict, task: str, seed: int) -> dict:
    """Settings of the intermediate-task run (fine-tuned once per seed, reused by every target task):
    the task's base settings (with its model's recipe) <- intermediate.train; its checkpoint is saved."""
    task = canonical_task(task)
    s = _base_settings(cfg, task, task, cfg["intermediate"]["train"].get("model"))
    s.update(cfg["intermediate"]["train"])
    s.update(task=task, glue_task=task, condition="intermediate", seed=int(seed), select=None, intermediate_task=None,
             save_checkpoint=True, init_seed=int(seed), data_seed=int(seed))
    s["selection_metric"], s["report_metric"] = task_metrics(cfg, task)
    return s


def task_metrics(cfg: dict, task: str) -> tuple[str, str]:
    """(selection metric, report metric) of a GLUE task: evaluation's per-task choice, else the paper's
    (the official code's selection metric and the paper's reported metric, pipeline/tasks.py)."""
    ev = cfg["evaluation"]
    return (ev["selection_metric"].get(task, TASKS[task].selection_metric),
            ev["report_metric"].get(task, TASKS[task].report_metric))


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
