"""Analysis commands, registered onto the CLI: aggregate, metrics (and the analysis stages)."""
from __future__ import annotations

import json
from pathlib import Path


def _study(path) -> dict:
    return json.loads(Path(path).read_text())


def cmd_aggregate(a):
    from .aggregate import curves_table, drift_table, load_records, runs_table
    from .config import run_grid
    from .io import atomic_write_csv

    cfg = _study(a.study)
    records, dirs = load_records(a.root, run_grid(cfg))
    out = Path(a.out)
    atomic_write_csv(out / "runs.csv", runs_table(records))
    atomic_write_csv(out / "curves.csv", curves_table(dirs))
    atomic_write_csv(out / "drift.csv", drift_table(dirs))


def cmd_metrics(a):
    import pandas as pd

    from .aggregate import metrics_summary
    from .io import atomic_write_json

    atomic_write_json(a.out, metrics_summary(pd.read_csv(a.runs)))


def cmd_study(a):
    """Write the merged configuration (what analysis stages read) with its hash."""
    from .config import config_hash, load_config
    from .io import atomic_write_json

    cfg = json.loads(a.json) if a.json else load_config(a.config)
    atomic_write_json(a.out, {**cfg, "_config_hash": config_hash(cfg)})


def register(sub):
    q = sub.add_parser("aggregate", help="runs.csv, curves.csv and drift.csv from the run directories")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_aggregate)

    q = sub.add_parser("metrics", help="the DVC metrics file (per task and condition)")
    q.add_argument("--runs", required=True)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_metrics)

    q = sub.add_parser("study", help="write the merged configuration as JSON")
    q.add_argument("--json", help="the merged configuration as a JSON string")
    q.add_argument("--config", nargs="+", default=["params.yaml"])
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_study)
    return sub
