"""The study's configuration: loading with overlays, one schema with messages that name the key
path and the allowed values, condition resolution (base <- task <- condition), sweep expansion, and
the run grid. Import-light (no torch), so Snakemake can plan without the model.
"""
from __future__ import annotations

import copy
import difflib
import functools
import math
import hashlib
import itertools
import json
from pathlib import Path

import yaml

from .errors import ConfigError
from .tasks import ALIASES, TASKS, TRAIN_ROWS, canonical_task


# Names that become paths, wildcards or command-line words (study, dataset, condition, task): letters,
# digits, '_', '.', '-', not starting with a dot (so never '..', never a hidden file, never a shell word).
SAFE_NAME = r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"


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
    return f"{path}.{key}: unknown key{hint}; allowed: {', '.join(sorted(allowed))}"


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


@_check("tasks", "models", "datasets")
def _check_task_overrides(cfg):
    for t in cfg["tasks"]:
        if t not in _datasets(cfg) and _glue_or_error(t):
            yield f"tasks.{t}: {_glue_or_error(t)} (or a name defined under datasets:)"
    for m, recipe in cfg["models"].items():
        for t in recipe.get("tasks") or {}:
            if t not in _datasets(cfg) and _glue_or_error(t):
                yield f"models.{m}.tasks.{t}: {_glue_or_error(t)} (or a name defined under datasets:)"


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
            if _glue_or_error(t):
                yield f"{path}.{t}: {_glue_or_error(t)}"
            elif path.startswith("evaluation") and value not in TASKS[canonical_task(t)].metrics:
                yield (f"{path}.{t}: {value!r} is not computed for {canonical_task(t)}; allowed: "
                       f"{', '.join(TASKS[canonical_task(t)].metrics)}")


@_check("data")
def _check_data(cfg):
    glue_dir = cfg["data"]["glue_dir"]
    if glue_dir is not None and not Path(glue_dir).is_dir():
        yield f"data.glue_dir: {glue_dir!r} is not an existing folder (null: $GLUE_DIR, else the Hub)"


@_check("conditions")
def _check_conditions(cfg):
    conds = cfg["conditions"]
    families = {n for n, over in conds.items() if any(isinstance(v, list) for v in (over or {}).values())}
    expanded = expand_conditions(conds)
    for name, over in conds.items():
        sel = (over or {}).get("select")
        if sel is None:
            continue
        if sel not in conds:
            yield f"conditions.{name}.select: {sel!r} is not a condition; allowed (sweeps): {', '.join(sorted(families))}"
        elif sel not in families:
            yield (f"conditions.{name}.select: {sel!r} sweeps nothing (no list value), so there is nothing to "
                   f"select; allowed (sweeps): {', '.join(sorted(families)) or 'none defined'}")
        elif name in families:
            yield f"conditions.{name}: a condition that selects from {sel!r} cannot sweep itself"
    clash = sorted(set(conds) & {m for m, over in expanded.items() if "family" in over})
    for m in clash:
        yield f"conditions.{m}: the name of a sweep member ({expanded[m]['family']}); rename it"


@_check("grid", "study", "conditions", "seeds", "datasets")
def _check_grid(cfg):
    tasks = cfg["study"]["tasks"]
    known = _known_conditions(cfg)
    families = sweep_families(cfg["conditions"])
    expanded = _expanded_cached(cfg)
    for i, block in enumerate(cfg["grid"]):
        for j, t in enumerate(block["tasks"]):
            if t not in tasks:
                yield f"grid[{i}].tasks[{j}]: {t!r} is not in study.tasks; allowed: {', '.join(tasks)}"
        for j, c in enumerate(block["conditions"]):
            if c not in known:
                yield f"grid[{i}].conditions[{j}]: unknown condition {c!r}; allowed: {', '.join(sorted(known))}"
        if block["seeds"] not in cfg["seeds"]:
            yield f"grid[{i}].seeds: {block['seeds']!r} is not a seed set; allowed: {', '.join(cfg['seeds'])}"
    if any(True for _ in _grid_problems_so_far(cfg, known)):
        return
    # a selected condition needs its sweep's runs on the same dataset
    ran = {(t, c) for t, c, _s in run_grid(cfg)}
    for t, c in sorted(ran):
        sel = expanded[c].get("select")
        if sel and not any((t, m) in ran for m in families.get(sel, [])):
            yield (f"grid: {c!r} on {t!r} selects from {sel!r}, but no grid block runs {sel!r} on {t!r}; add "
                   f"{{tasks: [{t}], conditions: [{sel}], seeds: <a selection seed set>}}")


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
    known = _known_conditions(cfg)
    for i, comp in enumerate(a["comparisons"]):
        for side in ("baseline", "treatment"):
            if comp[side] not in known:
                yield (f"analysis.comparisons[{i}].{side}: unknown condition {comp[side]!r}; "
                       f"allowed: {', '.join(sorted(known))}")
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
    """Each distinct run setting of the grid: steps, the intermediate task, and the model's own limits
    read from its config.json where it is available locally (else the job checks at its start)."""
    seen_models = set()
    for t, cond, seed in _distinct_runs(cfg):
        s = resolve_settings(cfg, t, cond, seed)
        where = f"conditions.{cond} on {t}"
        if s["max_steps"] is None and s["epochs"] is None:
            yield f"{where}: needs epochs or max_steps"
        if s["intermediate_task"] is not None and _glue_or_error(s["intermediate_task"]):
            yield f"{where}: intermediate_task: {_glue_or_error(s['intermediate_task'])}"
        key = (s["model"], s["reinit_layers"], s["reinit_pooler"], s["llrd_eta"], s["max_seq_length"])
        if key not in seen_models:
            seen_models.add(key)
            for msg in _model_problems(s):
                yield f"{where}: {msg}"


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


def read_overlay(path) -> dict:
    """One configuration file as a mapping of sections; any problem names the file (and line)."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError([f"{path}: cannot read: {exc.strerror or exc}"])
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError([f"{where}: not valid YAML: {problem}"])
    if data is None:
        raise ConfigError([f"{path}: empty file; a configuration is a mapping of sections "
                           f"({', '.join(schema()['required'])})"])
    if not isinstance(data, dict):
        raise ConfigError([f"{path}: must be a mapping of sections ({', '.join(schema()['required'][:4])}, ...), "
                           f"got a {type(data).__name__}"])
    return data


def _record_origins(origins: dict, node, file: str, path=()) -> None:
    """origins[key path] = files that set it, in order; a replaced value forgets what it replaced."""
    here = key_path(path)
    if isinstance(node, dict):
        origins.setdefault(here, []).append(file)
        for k, v in node.items():
            _record_origins(origins, v, file, path + (k,))
        return
    for old in [k for k in origins if k.startswith(here + ".") or k.startswith(here + "[")]:
        del origins[old]
    origins[here] = [file]
    if isinstance(node, list):
        for i, v in enumerate(node):
            _record_origins(origins, v, file, path + (i,))


def _blame(origins: dict, message: str) -> str | None:
    """The file a message's key path came from: the file that set it, else the first that set its
    nearest parent (where a key is missing, the base file)."""
    path = message.split(": ", 1)[0].split(" ", 1)[0]
    if path in origins:
        return origins[path][-1]
    while path:
        cut = max(path.rfind("."), path.rfind("["))
        path = path[:cut] if cut > 0 else ""
        if path in origins:
            return origins[path][0]
    return None


def merge_files(paths) -> tuple[dict, dict]:
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
        cfg = deep_merge(cfg, data)
        _record_origins(origins, data, str(p))
    if problems:
        raise ConfigError(problems)
    return cfg, origins


def with_files(errors: list[str], origins: dict) -> list[str]:
    """Each message prefixed with the file its key came from."""
    out = []
    for e in errors:
        f = _blame(origins, e)
        out.append(f"{f}: {e}" if f else e)
    return out


def load_config(paths, check: bool = True) -> dict:
    """params.yaml [overlays] merged and validated; a ConfigError lists every problem, each naming its file."""
    cfg, origins = merge_files(paths)
    if check:
        errors = validate(cfg)
        if errors:
            raise ConfigError(with_files(errors, origins))
    return cfg


def workflow_errors(config: dict, configfiles) -> list[str]:
    """For the Snakefile: the problems of Snakemake's merged `config`, each named by the configuration
    file its key came from (`configfiles`: params.yaml and every --configfile, in order)."""
    try:
        _, origins = merge_files(configfiles)
    except ConfigError as exc:
        return exc.errors
    return with_files(validate(config), origins)


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
