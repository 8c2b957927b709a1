"""The preparation stages: normalised GLUE rows, fixed splits, tokenised features."""
from __future__ import annotations

import json
import logging
from pathlib import Path

log = logging.getLogger("pipeline")


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


def split_rows(spec, src: dict, split_cfg: dict) -> tuple[dict, dict]:
    """({'train'|'val'|'test': rows (index, text_a, text_b, label)}, {split: its source file or None})
    of one task from its normalised rows `src` ({'train', 'dev'}) by the split settings."""
    from .splits import make_splits

    parts = make_splits(src["train"], src["dev"], spec, split_cfg)
    rows = {name: [(i,) + tuple(src[s][i]) for s, i in ids] for name, ids in parts.items()}
    return rows, {name: (ids[0][0] if ids else None) for name, ids in parts.items()}


def build_run_features(cfg: dict, dataset: str, model: str, max_seq_length: int) -> dict:
    """A run's features built in-process, as the data, splits and features stages build them (the same
    rows, splits and tokens): for `python -m pipeline finetune` without --features, bench/ and tests.
    `cfg` is the study's configuration (pipeline.config.load_config), `dataset` a GLUE task or a
    `datasets:` name."""
    from .config import glue_task_of, split_settings
    from .data import load_rows
    from .features import tokenize_splits
    from .tasks import dev_split, task_spec

    spec = task_spec(glue_task_of(cfg, dataset))
    glue_dir = cfg["data"]["glue_dir"]
    src = {"train": load_rows(spec.name, "train", glue_dir)[0],
           "dev": load_rows(spec.name, dev_split(spec.name), glue_dir)[0]}
    rows, _ = split_rows(spec, src, split_settings(cfg, dataset))
    return tokenize_splits(spec.name, rows, model, max_seq_length)


def cmd_splits(a):
    from .data import read_rows, write_rows
    from .io import atomic_write_json
    from .splits import majority_baseline
    from .tasks import task_spec

    spec = task_spec(a.task)
    cfg = json.loads(a.settings)
    src = {"train": read_rows(Path(a.data) / "train.jsonl"), "dev": read_rows(Path(a.data) / "dev.jsonl")}
    parts, sources = split_rows(spec, src, cfg)
    meta = {"task": spec.name, "settings": cfg, "sizes": {}, "majority_baseline": {}}
    for name, rows in parts.items():
        write_rows(rows, Path(a.out) / f"{name}.jsonl")
        meta["sizes"][name] = len(rows)
        meta["majority_baseline"][name] = majority_baseline(spec, [r[3] for r in rows])
        meta.setdefault("source", {})[name] = sources[name]
    atomic_write_json(Path(a.out) / "meta.json", meta)
    log.info("%s splits: %s", spec.name, meta["sizes"])


def cmd_features(a):
    import torch

    from .data import read_rows
    from .features import tokenize_splits
    from .io import atomic_save
    from .provenance import sha256_file

    split_dir = Path(a.splits)
    rows = {split: read_rows(split_dir / f"{split}.jsonl") for split in ("train", "val", "test")}
    feats = tokenize_splits(a.task, rows, a.model, a.max_seq_length)
    feats["split_sha256"] = {s: sha256_file(split_dir / f"{s}.jsonl") for s in ("train", "val", "test")}
    atomic_save(a.out, lambda tmp: torch.save(feats, tmp))
