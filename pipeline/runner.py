"""The fine-tune stage: a run's settings (the resolved JSON the workflow passes, or resolved here from
the study's configuration through the same function), its selected candidate, the checks of the model
and device before any training, the run, and its directory (record.json last, so its presence marks a
complete run)."""
from __future__ import annotations

import json
import logging
from pathlib import Path

from .errors import ConfigError
from .settings import RunSettings

log = logging.getLogger("pipeline")


def settings_from_args(a) -> RunSettings:
    """--settings JSON, or --config with --task, --condition and --seed (resolve_settings), both through
    RunSettings.from_dict."""
    identity = {"--task": a.task, "--condition": a.condition, "--seed": a.seed}
    if a.settings is not None:
        given = [k for k, v in identity.items() if v is not None]
        if given:
            raise ConfigError([f"finetune: {', '.join(given)} cannot be combined with --settings (the settings "
                               f"already say which run this is)"])
        try:
            d = json.loads(a.settings)
        except json.JSONDecodeError as exc:
            raise ConfigError([f"--settings: not valid JSON: {exc}"]) from exc
        return RunSettings.from_dict(d)
    missing = [k for k, v in {"--config": a.config, **identity}.items() if v is None]
    if missing:
        raise ConfigError([f"finetune needs --settings JSON, or --config with --task, --condition and --seed "
                           f"(missing: {', '.join(missing)})"])
    from .config import load_config, resolve_settings

    return RunSettings.from_dict(resolve_settings(load_config(a.config), a.task, a.condition, a.seed))


def run_features(s: RunSettings, a) -> dict:
    """Precomputed features (--features), or built in-process from the study's configuration (--config)."""
    if a.features:
        from .features import load_features

        return load_features(a.features)
    if not a.config:
        raise ConfigError(["finetune: without --features the features are built from the study's "
                           "configuration: pass --config params.yaml [overlays]"])
    from .config import load_config
    from .prepare import build_run_features

    return build_run_features(load_config(a.config), s.task, s.model, s.max_seq_length)


def apply_selection(s: RunSettings, path) -> RunSettings:
    """Settings of a selected condition: its own overrides plus the chosen candidate's."""
    if not path:
        raise ConfigError([f"condition {s.condition!r} selects from {s.select!r}: pass --selection FILE"])
    sel = json.loads(Path(path).read_text())
    if sel["family"] != s.select or sel["task"] != s.task:
        raise ConfigError([f"{path}: selection of {sel['task']}/{sel['family']}, not {s.task}/{s.select}"])
    return s.replace(**sel["overrides"], selected=sel["chosen"])


def model_config(name: str) -> dict:
    """The model's config.json as a dict: from this machine when it is there (no weights are read),
    else through transformers (which downloads a Hub id's config, as loading the model would)."""
    from .architecture import local_model_config

    cfg = local_model_config(name)
    if cfg is not None:
        return cfg
    from transformers import AutoConfig

    from .model import _load_help, resolve_model

    path, _ = resolve_model(name)
    try:
        return AutoConfig.from_pretrained(path).to_dict()
    except Exception as exc:
        raise _load_help(name, exc) from exc


def check_run(s: RunSettings) -> None:
    """What can be known before training: the device exists, the model can honour the settings.
    Raises ConfigError (ModelLoadError when the model's config cannot be read)."""
    from .train import check_model, pick_device

    pick_device(s.device)
    check_model(s, model_config(s.model))


def cmd_finetune(a):
    import torch  # noqa: F401  (fail early, before any output exists)

    from .io import atomic_write_csv, atomic_write_json
    from .model import resolve_model, weights_sha256
    from .provenance import git_info, machine, sha256_file, versions
    from .train import run, save_checkpoint

    s = settings_from_args(a)
    if s.select:
        s = apply_selection(s, a.selection)
    check_run(s)
    out = Path(a.out)
    feats = run_features(s, a)
    init_weights = None
    if a.init_weights:
        from safetensors.torch import load_file

        init_weights = load_file(a.init_weights)
    result = run(s, feats, init_weights=init_weights, threads=a.threads, keep_state=s.save_checkpoint)
    path, identity = resolve_model(s.model)
    rec = result.record
    rec["settings"] = s.to_dict()
    rec["model"] = {"name": s.model, "path_or_id": path, "weights_sha256": weights_sha256(path), **identity}
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
    status = f"DIVERGED at step {rec['diverged_step']}, " if rec["diverged"] else ""
    score = rec["test_best"][rec["metric"]]
    line = (f"done {rec['task']}/{rec['condition']}/seed{rec['seed']}: {status}test {rec['metric']}="
            f"{float('nan') if score is None else score:.4f} (best step {rec['best_step']}), "
            f"{t['wall_s']:.1f} s, {t['train_examples_per_s'] or 0:.1f} train ex/s")
    log.info("%s", line)  # the run's log file (stderr)
    # stdout: the one line a running study shows per finished run (Snakemake prints a job's stdout)
    print(line, flush=True)
