"""Crash-safe file output: write to a temporary name in the same folder, fsync, rename.

A job killed at any point leaves either the previous file or no file, never a partial one.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_text(path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _clean(obj):
    """JSON has no NaN: write NaN/inf as null so every reader parses the file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def atomic_write_json(path, obj) -> None:
    atomic_write_text(path, json.dumps(_clean(obj), indent=2, sort_keys=True) + "\n")


def atomic_write_csv(path, df) -> None:
    atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def atomic_save(path, save_fn) -> None:
    """For writers that want a filename (torch.save, safetensors): write to tmp, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_fn(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
