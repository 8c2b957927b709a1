"""Command line: `python -m pipeline <command> ...`, one command per workflow stage.

Each command reads its inputs, writes its outputs atomically, and fails with a message naming the
file or key at fault.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

log = logging.getLogger("pipeline")


def _setup_logging():
    logging.basicConfig(level=os.environ.get("PIPELINE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def cmd_validate(a):
    from .config import load_config, run_grid, study_root

    cfg = load_config(a.config)
    grid = run_grid(cfg)
    print(f"config OK: study {cfg['study']['name']!r} -> {study_root(cfg)}/, {len(grid)} runs")


def cmd_data(a):
    from .data import load_rows, write_rows
    from .io import atomic_write_json
    from .tasks import dev_split, task_spec

    spec = task_spec(a.task)
    out = Path(a.out)
    infos = {}
    for split in ("train", dev_split(spec.name)):  # the study's labelled dev file is written as dev.jsonl
        rows, info = load_rows(spec.name, split, a.glue_dir or None)
        name = "train" if split == "train" else "dev"
        write_rows(rows, out / f"{name}.jsonl")
        infos[name] = info
        log.info("%s/%s: %d rows from %s (verified: %s)", spec.name, split, info["rows"], info["source"],
                 info["verified"])
    atomic_write_json(out / "meta.json", {k: {kk: vv for kk, vv in v.items() if kk != "source"}
                                          for k, v in infos.items()})


def cmd_splits(a):
    from .data import read_rows, write_rows
    from .io import atomic_write_json
    from .splits import make_splits, majority_baseline
    from .tasks import task_spec

    spec = task_spec(a.task)
    cfg = json.loads(a.settings)
    src = {"train": read_rows(Path(a.data) / "train.jsonl"), "dev": read_rows(Path(a.data) / "dev.jsonl")}
    parts = make_splits(src["train"], src["dev"], spec, cfg)
    meta = {"task": spec.name, "settings": cfg, "sizes": {}, "majority_baseline": {}}
    for name, ids in parts.items():
        rows = [(i,) + tuple(src[s][i]) for s, i in ids]
        write_rows(rows, Path(a.out) / f"{name}.jsonl")
        meta["sizes"][name] = len(rows)
        meta["majority_baseline"][name] = majority_baseline(spec, [r[3] for r in rows])
        meta.setdefault("source", {})[name] = ids[0][0] if ids else None
    atomic_write_json(Path(a.out) / "meta.json", meta)
    log.info("%s splits: %s", spec.name, meta["sizes"])


def cmd_features(a):
    import torch

    from .features import build_features
    from .io import atomic_save
    from .provenance import sha256_file

    feats = build_features(a.task, Path(a.splits), a.model, a.max_seq_length)
    feats["split_sha256"] = {s: sha256_file(Path(a.splits) / f"{s}.jsonl") for s in ("train", "val", "test")}
    atomic_save(a.out, lambda tmp: torch.save(feats, tmp))


def _settings_from_args(a) -> dict:
    if a.settings:
        return json.loads(a.settings)
    from .config import load_config, resolve_settings

    if not (a.config and a.task and a.condition is not None and a.seed is not None):
        raise SystemExit("finetune needs --settings JSON, or --config with --task, --condition and --seed")
    return resolve_settings(load_config(a.config), a.task, a.condition, a.seed)


def _features_for(s: dict, a) -> dict:
    """Precomputed features (--features), or built in-process from the config (library use)."""
    from .features import load_features

    if a.features:
        return load_features(a.features)
    from .config import load_config, split_settings
    from .data import load_rows
    from .features import tokenize_rows
    from .model import load_tokenizer
    from .splits import make_splits
    from .tasks import dev_split, task_spec

    cfg = load_config(a.config)
    spec = task_spec(s.get("glue_task", s["task"]))
    train, _ = load_rows(spec.name, "train", cfg["data"].get("glue_dir"))
    dev, _ = load_rows(spec.name, dev_split(spec.name), cfg["data"].get("glue_dir"))
    parts = make_splits(train, dev, spec, split_settings(cfg, s["task"]))
    src = {"train": train, "dev": dev}
    tok = load_tokenizer(s["model"])
    return {name: tokenize_rows(tok, [(i,) + tuple(src[sp][i]) for sp, i in ids], s["max_seq_length"],
                                spec.is_regression) for name, ids in parts.items()}


def apply_selection(s: dict, path) -> dict:
    """Settings of a selected condition: its own overrides plus the chosen candidate's."""
    if not path:
        raise SystemExit(f"condition {s['condition']!r} selects from {s['select']!r}: pass --selection FILE")
    sel = json.loads(Path(path).read_text())
    if sel["family"] != s["select"] or sel["task"] != s["task"]:
        raise SystemExit(f"{path}: selection of {sel['task']}/{sel['family']}, not {s['task']}/{s['select']}")
    return {**s, **sel["overrides"], "selected": sel["chosen"]}


def cmd_finetune(a):
    import torch  # noqa: F401  (fail early, before any output exists)

    from .io import atomic_write_csv, atomic_write_json
    from .model import resolve_model, weights_sha256
    from .provenance import git_info, machine, sha256_file, versions
    from .train import run, save_checkpoint

    s = _settings_from_args(a)
    if s.get("select"):
        s = apply_selection(s, a.selection)
    out = Path(a.out)
    feats = _features_for(s, a)
    init_weights = None
    if a.init_weights:
        from safetensors.torch import load_file

        init_weights = load_file(a.init_weights)
    result = run(s, feats, init_weights=init_weights, threads=a.threads,
                 keep_state=bool(s.get("save_checkpoint")) or bool(a.save_checkpoint))
    path, identity = resolve_model(s["model"])
    rec = result.record
    rec["settings"] = s
    rec["model"] = {"name": s["model"], "path_or_id": path, "weights_sha256": weights_sha256(path), **identity}
    rec["inputs"] = {"features": str(a.features) if a.features else None,
                     "features_sha256": sha256_file(a.features) if a.features else None,
                     "split_sha256": feats.get("split_sha256"),
                     "init_weights": a.init_weights,
                     "init_weights_sha256": sha256_file(a.init_weights) if a.init_weights else None}
    rec["provenance"] = {"git": git_info(), "versions": versions(), "machine": machine()}
    if result.state_dict is not None:
        save_checkpoint(result.state_dict, out / "model.safetensors")
    atomic_write_csv(out / "curve.csv", result.curve)
    atomic_write_csv(out / "drift.csv", result.drift)
    atomic_write_csv(out / "updates.csv", result.updates)
    atomic_write_json(out / "record.json", rec)  # last: its presence marks a complete run
    t = rec["timing"]
    log.info("done %s/%s/seed%s: test %s=%.4f (best step %s), %.1f s, %.1f train ex/s",
             rec["task"], rec["condition"], rec["seed"], rec["metric"], rec["test_best"][rec["metric"]] or float("nan"),
             rec["best_step"], t["wall_s"], t["train_examples_per_s"] or 0)


def main(argv=None):
    _setup_logging()
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("validate", help="check a configuration (params.yaml plus overlays)")
    q.add_argument("--config", nargs="+", default=["params.yaml"])
    q.set_defaults(fn=cmd_validate)

    q = sub.add_parser("data", help="load one GLUE task (local folder or Hub) and normalise its rows")
    q.add_argument("--task", required=True)
    q.add_argument("--glue-dir", default=None, help="GLUE folder (default: $GLUE_DIR, else the Hub)")
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_data)

    q = sub.add_parser("splits", help="make the train/val/test splits of one task")
    q.add_argument("--task", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--settings", required=True, help="split settings as JSON")
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_splits)

    q = sub.add_parser("features", help="tokenise one task's splits once for a model")
    q.add_argument("--task", required=True)
    q.add_argument("--splits", required=True)
    q.add_argument("--model", required=True)
    q.add_argument("--max-seq-length", type=int, required=True)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_features)

    q = sub.add_parser("finetune", help="one run: task x condition x seed")
    q.add_argument("--settings", help="the run's resolved settings as JSON (what the workflow passes)")
    q.add_argument("--config", nargs="+", help="params.yaml [overlays]: resolve settings from the study")
    q.add_argument("--task")
    q.add_argument("--condition")
    q.add_argument("--seed", type=int)
    q.add_argument("--features", help="tokenised features (.pt); built in-process when omitted")
    q.add_argument("--init-weights", help="safetensors to start from (intermediate-task transfer)")
    q.add_argument("--selection", help="selection file of the condition's family (conditions with select:)")
    q.add_argument("--save-checkpoint", action="store_true")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_finetune)

    from . import commands_analysis  # registers the analysis commands

    commands_analysis.register(sub)
    a = p.parse_args(argv)
    try:
        a.fn(a)
    except Exception as exc:  # one clear line for known error kinds, a traceback for the rest
        from .config import ConfigError
        from .data import DataError
        from .model import ModelLoadError
        from .splits import SplitError

        if isinstance(exc, (ConfigError, DataError, ModelLoadError, SplitError)):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
