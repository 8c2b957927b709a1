"""Crash-safe, reproducible file output: write to a temporary name in the same folder, fsync, rename.

A job killed at any point leaves either the previous file or no file, never a partial one. Written
files get the mode an ordinary `open()` would give them (0666 less the umask; `mkstemp` alone makes
them 0600, unreadable by colleagues on a shared machine). A writer that wants a file name (torch.save,
safetensors) writes it under a fixed name inside a temporary folder, so neither a random temporary name
nor the final name (torch.save records the file's name inside its archive) ends up in the bytes: the
same content gives the same file, wherever and under whatever name it is written.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path

from .errors import RecordError


def _umask() -> int:
    """The process's umask: from /proc on Linux, else by setting and restoring it."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open(path, "w")` gives a new file: 0o666 less the umask."""
    return 0o666 & ~_umask()


def atomic_write_bytes(path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fchmod(fh.fileno(), file_mode())
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
    """For writers that want a filename (torch.save, safetensors): `save_fn` writes `data<suffix>` in a
    hidden temporary folder beside the file, which is then renamed into place. (torch.save names the
    records inside its archive after the file it writes: a random temporary name would make every
    rebuild differ, and the final name would make two copies of one content differ.)"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmpdir = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = os.path.join(tmpdir, "data" + path.suffix)
    try:
        save_fn(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)


def read_record(path) -> dict:
    """One run's record.json; a missing, truncated or otherwise unreadable file raises RecordError
    naming it (delete its run directory and run the workflow again to redo that run)."""
    path = Path(path)
    try:
        rec = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise RecordError(f"{path}: missing (the run has not finished: run the workflow again)") from exc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RecordError(f"{path}: not a complete run record ({exc}); delete {path.parent} and run the "
                          f"workflow again to redo this run") from exc
    if not isinstance(rec, dict):
        raise RecordError(f"{path}: not a run record (a JSON {type(rec).__name__}, not an object); delete "
                          f"{path.parent} and run the workflow again to redo this run")
    return rec
