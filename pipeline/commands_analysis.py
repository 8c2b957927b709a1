"""Analysis commands, registered onto the CLI: aggregate, metrics (and the analysis stages)."""
from __future__ import annotations

import json
from pathlib import Path


def _study(path) -> dict:
    return json.loads(Path(path).read_text())


def cmd_aggregate(a):
    from .aggregate import curves_table, drift_table, load_records, runs_table, timing_table
    from .config import run_grid
    from .io import atomic_write_csv

    cfg = _study(a.study)
    records, dirs = load_records(a.root, run_grid(cfg))
    out = Path(a.out)
    atomic_write_csv(out / "runs.csv", runs_table(records, cfg))
    atomic_write_csv(out / "timing.csv", timing_table(records))
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
    q = sub.add_parser("aggregate",
                       help="runs.csv, curves.csv, drift.csv and timing.csv from the run directories")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True,
                   help="the study's results folder (its runs/<task>/<condition>/seed<N>/ are read)")
    q.add_argument("--out", required=True,
                   help="output folder (summary/): runs.csv, curves.csv, drift.csv, timing.csv")
    q.set_defaults(fn=cmd_aggregate)

    q = sub.add_parser("metrics", help="the DVC metrics file (per task and condition)")
    q.add_argument("--runs", required=True, help="summary/runs.csv (from `aggregate`)")
    q.add_argument("--out", required=True, help="the metrics JSON file to write (metrics.json)")
    q.set_defaults(fn=cmd_metrics)

    q = sub.add_parser("study", help="write the merged configuration as JSON")
    q.add_argument("--json", help="the merged configuration as a JSON string (instead of --config)")
    q.add_argument("--config", nargs="+", default=["params.yaml"],
                   help="params.yaml and overlays, merged in order (default: params.yaml); "
                        "ignored with --json")
    q.add_argument("--out", required=True, help="the study.json file to write (configuration plus its hash)")
    q.set_defaults(fn=cmd_study)
    register_select(sub)
    register_calibration(sub)
    register_provenance(sub)
    return sub


def cmd_select(a):
    from .io import atomic_write_json, read_record
    from .select import choose

    candidates = json.loads(a.candidates)
    members = [c["name"] for c in candidates]
    by_member: dict = {m: [] for m in members}
    seeds: dict = {m: [] for m in members}
    metric = ""
    for path in a.records:
        rec = read_record(path)
        if rec["task"] != a.task or rec["condition"] not in by_member:
            raise SystemExit(f"{path}: not a run of {a.task}/{a.family}")
        metric = rec["selection_metric"]
        # None (JSON's NaN) stays in: choose() scores an undefined correlation as no skill
        by_member[rec["condition"]].append(rec["val_best"][metric])
        seeds[rec["condition"]].append(rec["seed"])
    out = choose([{**c, "val": by_member[c["name"]], "metric": metric} for c in candidates])
    # the seeds the selection actually used (the selection table compares them with the report runs' seeds)
    out.update(task=a.task, family=a.family, metric=metric,
               seeds=sorted({s for v in seeds.values() for s in v}))
    atomic_write_json(a.out, out)


def register_select(sub):
    q = sub.add_parser("select", help="choose a family's setting per task on validation scores only")
    q.add_argument("--candidates", required=True, help="the family's [{name, overrides}] as JSON")
    q.add_argument("--task", required=True, help="the dataset the candidates were run on (e.g. rte)")
    q.add_argument("--family", required=True, help="the sweep condition whose members are the candidates")
    q.add_argument("--records", nargs="+", required=True,
                   help="record.json of every candidate run on the selection seeds (validation scores only)")
    q.add_argument("--out", required=True,
                   help="the selection JSON file to write (selection/<task>/<family>.json)")
    q.set_defaults(fn=cmd_select)


def cmd_calibration(a):
    from .calibration import calibration_table, to_markdown
    from .config import load_config, study_root
    from .io import atomic_write_csv, atomic_write_json, atomic_write_text

    cfg = load_config(a.config)
    root = Path(study_root(cfg))
    table, chosen = calibration_table(cfg, root, a.margin)
    out = Path(a.out)
    atomic_write_csv(out / "calibration.csv", table)
    atomic_write_json(out / "chosen.json", chosen)
    atomic_write_text(out / "calibration.md", to_markdown(table, a.margin))
    print(to_markdown(table, a.margin))


def register_calibration(sub):
    q = sub.add_parser("calibration", help="the calibration table from a finished calibration study")
    q.add_argument("--config", nargs="+", default=["params.yaml", "configs/calibration.yaml"],
                   help="the calibration study's configuration files, merged in order "
                        "(default: params.yaml configs/calibration.yaml)")
    q.add_argument("--margin", type=float, default=0.10,
                   help="a setting 'learns' when the mean validation score of its LAST checkpoint (a score "
                        "not used to pick a checkpoint) beats the validation half's majority-class score by at "
                        "least this much (0-1 scale; default 0.10)")
    q.add_argument("--out", default="results/calibration",
                   help="output folder: calibration.csv, chosen.json, calibration.md "
                        "(default: results/calibration)")
    q.set_defaults(fn=cmd_calibration)


def cmd_provenance(a):
    """provenance.json beside metrics.json: the study's config hash, the code and package versions
    that made its runs, and hashes of the summary files (kept out of metrics.json on purpose)."""
    from .aggregate import run_dir
    from .config import run_grid
    from .io import atomic_write_json, read_record
    from .provenance import git_info, machine, sha256_file, versions

    cfg = _study(a.study)
    commits, models, hosts = set(), set(), set()
    for task, cond, seed in run_grid(cfg):
        rec = read_record(run_dir(a.root, task, cond, seed) / "record.json")
        git = rec["provenance"]["git"]
        commits.add((git["commit"], git["dirty"]))
        models.add((rec["model"]["name"], rec["model"]["weights_sha256"]))
        hosts.add(rec["provenance"]["machine"]["hostname"])
    atomic_write_json(a.out, {
        "config_hash": cfg.get("_config_hash"), "study": cfg["study"]["name"],
        "n_runs": len(run_grid(cfg)),
        "run_code_versions": [{"commit": c, "dirty": d} for c, d in sorted(commits, key=str)],
        "models": [{"name": n, "weights_sha256": h} for n, h in sorted(models, key=str)],
        "hosts": sorted(hosts),
        "summary_sha256": {"runs.csv": sha256_file(a.runs), "metrics.json": sha256_file(a.metrics)},
        "analysis": {"git": git_info(), "versions": versions(), "machine": machine()}})


def register_provenance(sub):
    q = sub.add_parser("provenance", help="provenance.json: config hash, code versions, input hashes")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True, help="the study's results folder (run records under runs/)")
    q.add_argument("--runs", required=True, help="summary/runs.csv, whose hash is recorded")
    q.add_argument("--metrics", required=True, help="metrics.json, whose hash is recorded")
    q.add_argument("--out", required=True, help="the provenance JSON file to write (provenance.json)")
    q.set_defaults(fn=cmd_provenance)
