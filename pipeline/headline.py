"""The study's headline as a flat DVC metric: results/claims_metrics.json, from tables/claims.json.

claims.json (pipeline/tables.py claims_json) holds, per claim, every number of the claims table for each
task plus the claim's verdict over tasks ("all tasks"): about 40 keys per task, too many for
`dvc metrics diff` to be read. This file keeps what a reader compares between two studies, under keys
that name the claim and the task:

  <claim>.verdict              the claim's verdict over its tasks (reproduced, inconclusive, ...)
  <claim>.<task>.effect        the deciding test's effect (0-1 scale, as in claims.json)
  <claim>.<task>.ci_low        its interval (level: ci_level)
  <claim>.<task>.ci_high
  <claim>.<task>.interval_of   what the interval is of (RQ 2a: the odds ratio, not the share's effect)
  <claim>.<task>.verdict       the verdict on that task

so `dvc metrics diff` lists one row per claim whose effect, interval or verdict moved.

    python -m pipeline.headline --claims results/tables/claims.json --out results/claims_metrics.json
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

OVER_TASKS = "all tasks"  # claims.json's key for a claim's verdict over its tasks
TASK_KEYS = ("effect", "ci_low", "ci_high", "ci_level", "interval_of", "verdict")


def _value(v):
    """Numbers rounded to 6 places (as metrics.json), NaN/inf as None; strings as they are."""
    if isinstance(v, bool) or v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float)):
        return round(float(v), 6) if math.isfinite(v) else None
    return str(v)


def headline(claims: dict) -> dict:
    """{claim: {"rq", "verdict", task: {effect, ci_low, ci_high, ci_level, verdict}}} from claims.json."""
    out = {}
    for name, entry in claims.items():
        over = entry.get(OVER_TASKS, {})
        row = {"rq": _value(over.get("rq")), "verdict": _value(over.get("verdict"))}
        for task, t in entry.items():
            if task == OVER_TASKS or not isinstance(t, dict):
                continue
            row[task] = {k: _value(t.get(k)) for k in TASK_KEYS if k in t}
        out[name] = row
    return out


def headline_lines(claims: dict) -> list[dict]:
    """One record per claim, for a one-line answer (the report's opening): rq, claim, verdict, and per
    task its effect and interval (0-1 scale)."""
    out = []
    for name, entry in claims.items():
        over = entry.get(OVER_TASKS, {})
        tasks = [{"task": task, **{k: t.get(k) for k in TASK_KEYS}}
                 for task, t in entry.items() if task != OVER_TASKS and isinstance(t, dict)]
        out.append({"name": name, "rq": str(over.get("rq", "")), "claim": over.get("claim", name),
                    "verdict": over.get("verdict", ""), "category": over.get("category", ""), "tasks": tasks})
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m pipeline.headline", description=__doc__.split("\n\n")[0])
    p.add_argument("--claims", required=True, help="tables/claims.json (from `python -m pipeline analyze`)")
    p.add_argument("--out", required=True, help="the flat metrics file to write (claims_metrics.json)")
    a = p.parse_args(argv)
    from .io import atomic_write_json

    atomic_write_json(a.out, headline(json.loads(Path(a.claims).read_text())))


if __name__ == "__main__":
    main()
