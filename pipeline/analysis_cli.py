"""Analysis commands of `python -m pipeline`: analyze, figures and report (registered by pipeline/cli.py).

Each command imports its module only when it runs, so `python -m pipeline --help` stays fast. The
output plan these commands follow lives in pipeline/plan.py (Snakemake imports it while planning);
`planned_tables` and `planned_figures` are re-exported here for callers of the old location.
Standalone: `python -m pipeline.analysis_cli analyze ...`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .plan import planned_figures, planned_tables  # noqa: F401  (re-exported)


def _study(path) -> dict:
    return json.loads(Path(path).read_text())


def cmd_analyze(a):
    from .analysis import run_analysis

    run_analysis(_study(a.study), a.root, runs_csv=a.runs, stats_dir=a.stats, tables_dir=a.tables)


def cmd_figures(a):
    from .figures import run_figures

    run_figures(_study(a.study), a.root, runs_flagged=a.runs_flagged, curves_csv=a.curves, drift_csv=a.drift,
                out_dir=a.out)


def cmd_report(a):
    from .report import run_report

    run_report(_study(a.study), a.root, tables_dir=a.tables, figures_dir=a.figures, out_html=a.out,
               paper_map=a.paper_map)


def register(sub):
    q = sub.add_parser("analyze", help="statistics, claims and the paper's tables from runs.csv")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True, help="the study's results folder (splits/, selection/)")
    q.add_argument("--runs", required=True, help="the runs table (summary/runs.csv, from `aggregate`)")
    q.add_argument("--stats", required=True, help="output folder of the statistics CSVs")
    q.add_argument("--tables", required=True,
                   help="output folder of the tables (md, tex, csv) and of claims.json (verdicts by claim and task)")
    q.set_defaults(fn=cmd_analyze)

    q = sub.add_parser("figures", help="every figure the study's grid allows (PNG + CSV of its numbers)")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True, help="the study's results folder (runs/ for updates.csv)")
    q.add_argument(
        "--runs-flagged", required=True, help="stats/runs_flagged.csv (runs with degenerate flags)"
    )
    q.add_argument("--curves", required=True, help="learning curves across seeds (summary/curves.csv)")
    q.add_argument("--drift", required=True, help="weight drift per block across seeds (summary/drift.csv)")
    q.add_argument("--out", required=True, help="output folder of the figures")
    q.set_defaults(fn=cmd_figures)

    q = sub.add_parser("report", help="one self-contained HTML report and the paper map")
    q.add_argument("--study", required=True, help="the study's merged configuration (study.json)")
    q.add_argument("--root", required=True,
                   help="the study's results folder (unused: the report reads only --tables and --figures)")
    q.add_argument("--tables", required=True, help="tables folder (with index.json)")
    q.add_argument("--figures", required=True, help="figures folder (with index.json)")
    q.add_argument("--out", required=True, help="the HTML report to write (report.html)")
    q.add_argument("--paper-map", required=True,
                   help="the paper map to write (paper_map.md: each of the paper's tables and figures "
                        "-> our files)")
    q.set_defaults(fn=cmd_report)
    return sub


def main(argv=None):
    import logging
    import sys

    logging.basicConfig(
        level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    p = argparse.ArgumentParser(prog="python -m pipeline.analysis_cli")
    register(p.add_subparsers(dest="command", required=True))
    a = p.parse_args(argv)
    a.fn(a)


if __name__ == "__main__":
    main()
