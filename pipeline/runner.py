"""The fine-tune stage: resolve a run's settings (and its selected candidate), run it, write its
directory (record.json last, so its presence marks a complete run)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("pipeline")


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
