"""The analyze stage: statistics, claims and the paper's tables, from the runs table (summary/runs.csv) alone.

Honesty rules, in code:
- Selection is on validation only (the select stage); test metrics are only reported here.
- Tables, comparisons and claims use the runs of the report seed sets (analysis.report_seeds) only.
- A collapsed run is scored, flagged and kept (degenerate.py), never dropped from a test.
- Comparisons are paired by seed (conditions share seeds); every verdict comes with its test, that
  test's interval, Holm's correction within the claim and the smallest effect the study could detect
  (claims.py, stats.py).

Modules of the analysis side, one idea each: plan (which outputs, from which runs), degenerate (failed
runs and their scores), reported (the paper's numbers and protocol), stats (tests and verdict rules),
claims (the paper's claims tested), tableformat and tables (the tables), figures, report.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .claims import comparisons, degenerate_claim
from .degenerate import flag_runs, summaries
from .io import atomic_write_csv, atomic_write_json
from .plan import CLAIMS_JSON, planned_tables, report_runs
from .reported import load_reported
from .tables import (
    table3_splits,
    table_claims,
    table_degenerate,
    table_layout1,
    table_mode,
    table_optimiser,
    table_selection,
)


def run_analysis(cfg: dict, root, runs_csv, stats_dir, tables_dir, reported: dict | None = None) -> dict:
    """Write stats/*.csv, every planned table (md, tex, csv), tables/claims.json and tables/index.json."""
    reported = reported or load_reported()
    runs = pd.read_csv(runs_csv)
    flagged = flag_runs(runs, cfg)
    rep = report_runs(flagged, cfg)
    summ = summaries(flagged)
    comps = comparisons(rep, cfg, reported)
    rq2 = degenerate_claim(rep, cfg, reported)
    sd = Path(stats_dir)
    atomic_write_csv(sd / "runs_flagged.csv", flagged)
    atomic_write_csv(sd / "summary.csv", summ)
    atomic_write_csv(
        sd / "comparisons.csv", comps if len(comps) else pd.DataFrame(columns=["comparison", "task"])
    )
    tables_cfg = cfg["analysis"]["tables"]
    index, claims = [], {}
    for name in planned_tables(cfg):
        if name == "claims":
            t, claims = table_claims(comps, rq2, cfg)
            atomic_write_json(Path(tables_dir) / CLAIMS_JSON, claims)
        elif name == "table3_splits":
            t = table3_splits(cfg, root, reported)
        elif name == "optimiser":
            t = table_optimiser(tables_cfg["optimiser"], rep, cfg, reported)
        elif name == "degenerate":
            t = table_degenerate(flagged, cfg, reported)
        elif name == "selection":
            t = table_selection(cfg, root, reported, rep)
        else:
            t = table_layout1(name, tables_cfg[name], rep, cfg, reported, mode=table_mode(name))
        index.append(t.write(tables_dir))
    atomic_write_json(
        Path(tables_dir) / "index.json", {"tables": index, "config_hash": cfg.get("_config_hash")}
    )
    return {
        "flagged": flagged,
        "summary": summ,
        "comparisons": comps,
        "rq2": rq2,
        "claims": claims,
        "index": index,
    }
