"""GLUE loading: a local folder in GLUE's layout, or the Hugging Face Hub, normalised to the
same rows (text_a, text_b, label) and proven identical by committed fingerprints.

Local files are parsed strictly: every malformed line is an error naming file and line, never a
silently dropped row.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

from .tasks import TASKS, TaskSpec, canonical_task

log = logging.getLogger(__name__)

FINGERPRINTS = Path(__file__).with_name("fingerprints.json")
HUB_DATASET = "nyu-mll/glue"
# MNLI's dev files carry five annotator labels; train carries one.
_MNLI_COLUMNS = {"train": 12, "dev_matched": 16, "dev_mismatched": 16}


class DataError(ValueError):
    """A GLUE file is missing or malformed; the message names the file, line and problem."""


def _norm_label(spec: TaskSpec, raw: str, where: str):
    raw = raw.strip()
    if spec.is_regression:
        try:
            value = float(raw)
        except ValueError:
            raise DataError(f"{where}: label {raw!r} is not a number (task {spec.name} is a regression task)")
        if not 0.0 <= value <= 5.0:
            raise DataError(f"{where}: score {value} outside [0, 5]")
        return round(value, 4)
    if raw not in spec.labels:
        raise DataError(f"{where}: label {raw!r} not in the task's label set {list(spec.labels)}")
    return spec.labels.index(raw)


def expected_columns(spec: TaskSpec, split: str) -> int:
    return _MNLI_COLUMNS[split] if spec.name == "mnli" else spec.n_columns


def parse_glue_tsv(path: Path, spec: TaskSpec, split: str) -> list[tuple]:
    """Rows (text_a, text_b or None, label) of one GLUE tsv, in file order.

    No quoting (quote characters are literal text), tab-separated, UTF-8 with an optional BOM,
    optional final newline.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 ({exc})")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines or (spec.header and len(lines) == 1):
        raise DataError(f"{path}: empty file (no data rows)")
    n_cols = expected_columns(spec, split)
    rows = []
    for lineno, line in enumerate(lines, start=1):
        fields = line.rstrip("\r").split("\t")
        where = f"{path}:{lineno}"
        if len(fields) != n_cols:
            raise DataError(f"{where}: expected {n_cols} tab-separated fields for {spec.name}, found "
                            f"{len(fields)} (truncated or malformed row)")
        if spec.header and lineno == 1:
            continue
        text_a = fields[spec.text_columns[0]]
        text_b = fields[spec.text_columns[1]] if spec.pair else None
        rows.append((text_a, text_b, _norm_label(spec, fields[spec.label_column], where)))
    return rows


def _hub_rows(spec: TaskSpec, split: str) -> list[tuple]:
    import datasets  # heavy; only on the Hub path

    ds = datasets.load_dataset(HUB_DATASET, spec.hub_config, split=spec.hub_splits[split])
    cols = spec.hub_text
    rows = []
    for ex in ds:
        label = ex["label"]
        label = round(float(label), 4) if spec.is_regression else int(label)
        rows.append((ex[cols[0]], ex[cols[1]] if spec.pair else None, label))
    return rows


def fingerprint(rows) -> str:
    """sha256 over the normalised rows, one canonical JSON line each."""
    h = hashlib.sha256()
    for a, b, label in rows:
        h.update(json.dumps([a, b, label], ensure_ascii=False).encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def known_fingerprints() -> dict:
    return json.loads(FINGERPRINTS.read_text()) if FINGERPRINTS.exists() else {}


def resolve_glue_dir(glue_dir=None):
    """Configuration first, then the GLUE_DIR environment variable; None means the Hub."""
    if glue_dir:
        return Path(glue_dir)
    env = os.environ.get("GLUE_DIR")
    return Path(env) if env else None


def load_rows(task: str, split: str, glue_dir=None, verify: bool = True) -> tuple[list[tuple], dict]:
    """Normalised rows plus a provenance dict (source, file, rows, sha256, verified)."""
    spec = TASKS[canonical_task(task)]
    allowed = ("train",) + spec.dev_splits
    if split not in allowed:
        raise DataError(f"split {split!r} not available for {spec.name}; allowed: {list(allowed)}")
    folder = resolve_glue_dir(glue_dir)
    if folder is not None:
        path = folder / spec.folder / f"{split}.tsv"
        if not path.is_file():
            raise DataError(
                f"{path}: not found. The local GLUE folder {folder} has no {spec.folder}/{split}.tsv. "
                f"Provide it (GLUE's download_glue_data.py layout), point data.glue_dir or GLUE_DIR at a "
                f"folder that has it, or set neither to load {HUB_DATASET} from the Hugging Face Hub.")
        rows, source = parse_glue_tsv(path, spec, split), str(path)
    else:
        try:
            rows = _hub_rows(spec, split)
        except Exception as exc:  # offline, or the Hub refuses
            raise DataError(
                f"could not load {spec.name}/{split} from the Hub ({HUB_DATASET}): {exc}. Offline, set "
                f"GLUE_DIR (or data.glue_dir in params.yaml) to a folder in GLUE's layout.") from exc
        source = f"hub:{HUB_DATASET}/{spec.hub_config}/{spec.hub_splits[split]}"
    digest = fingerprint(rows)
    expected = known_fingerprints().get(spec.name, {}).get(split)
    info = {"task": spec.name, "split": split, "source": source, "rows": len(rows), "sha256": digest,
            "skipped_rows": 0, "verified": expected is not None and expected["sha256"] == digest}
    if verify and expected is not None and not info["verified"]:
        raise DataError(
            f"{source}: {len(rows)} rows with fingerprint {digest[:12]}..., but the committed fingerprint of "
            f"{spec.name}/{split} is {expected['rows']} rows, {expected['sha256'][:12]}... "
            f"(pipeline/fingerprints.json): this is not the GLUE version the study was built on.")
    if expected is None:
        log.warning("%s/%s: no committed fingerprint; rows not verified", spec.name, split)
    return rows, info


def load_glue(task: str, split: str, glue_dir=None):
    """A pandas DataFrame (text_a, text_b, label) of one GLUE split, in the file's order.

    `task` in GLUE's spelling, case-insensitive; `split` is train or dev (MNLI: dev_matched,
    dev_mismatched); `glue_dir=None` means GLUE_DIR, then the Hub.
    """
    import pandas as pd

    rows, _ = load_rows(task, split, glue_dir)
    return pd.DataFrame(rows, columns=["text_a", "text_b", "label"])


def write_rows(rows, path: Path) -> None:
    from .io import atomic_write_text

    atomic_write_text(path, "".join(json.dumps(list(r), ensure_ascii=False) + "\n" for r in rows))


def read_rows(path: Path) -> list[tuple]:
    with open(path, encoding="utf-8") as fh:
        return [tuple(json.loads(line)) for line in fh]
