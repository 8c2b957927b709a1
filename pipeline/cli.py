"""Command line: `python -m pipeline <command> ...`, one command per workflow stage.

Argument parsing only: each command's work lives in a stage module (prepare, runner,
commands_analysis), so Snakemake rules depend on the modules that compute their outputs, not on this file.

Each command reads its inputs, writes its outputs atomically, and fails with a message naming the
file or key at fault.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

log = logging.getLogger("pipeline")


def _setup_logging():
    logging.basicConfig(level=os.environ.get("PIPELINE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def cmd_validate(a):
    from .config import load_config, run_grid, study_root

    cfg = load_config(a.config)
    grid = run_grid(cfg)
    print(f"config OK: study {cfg['study']['name']!r} -> {study_root(cfg)}/, {len(grid)} runs")


def main(argv=None):
    _setup_logging()
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)

    q = sub.add_parser("validate", help="check a configuration (params.yaml plus overlays)")
    q.add_argument("--config", nargs="+", default=["params.yaml"])
    q.set_defaults(fn=cmd_validate)
    from .prepare import cmd_data, cmd_features, cmd_splits
    from .runner import cmd_finetune


    q = sub.add_parser("data", help="load one GLUE task (local folder or Hub) and normalise its rows")
    q.add_argument("--task", required=True)
    q.add_argument("--glue-dir", default=None, help="GLUE folder (default: $GLUE_DIR, else the Hub)")
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_data)

    q = sub.add_parser("splits", help="make the train/val/test splits of one task")
    q.add_argument("--task", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--settings", required=True, help="split settings as JSON")
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_splits)

    q = sub.add_parser("features", help="tokenise one task's splits once for a model")
    q.add_argument("--task", required=True)
    q.add_argument("--splits", required=True)
    q.add_argument("--model", required=True)
    q.add_argument("--max-seq-length", type=int, required=True)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_features)

    q = sub.add_parser("finetune", help="one run: task x condition x seed")
    q.add_argument("--settings", help="the run's resolved settings as JSON (what the workflow passes)")
    q.add_argument("--config", nargs="+", help="params.yaml [overlays]: resolve settings from the study")
    q.add_argument("--task")
    q.add_argument("--condition")
    q.add_argument("--seed", type=int)
    q.add_argument("--features", help="tokenised features (.pt); built in-process when omitted")
    q.add_argument("--init-weights", help="safetensors to start from (intermediate-task transfer)")
    q.add_argument("--selection", help="selection file of the condition's family (conditions with select:)")
    q.add_argument("--save-checkpoint", action="store_true")
    q.add_argument("--threads", type=int, default=1)
    q.add_argument("--out", required=True)
    q.set_defaults(fn=cmd_finetune)

    from . import commands_analysis  # registers the analysis commands

    commands_analysis.register(sub)
    from . import analysis_cli  # analyze, figures, report

    analysis_cli.register(sub)
    a = p.parse_args(argv)
    try:
        a.fn(a)
    except Exception as exc:  # one clear line for known error kinds, a traceback for the rest
        from .config import ConfigError
        from .data import DataError
        from .model import ModelLoadError
        from .splits import SplitError

        if isinstance(exc, (ConfigError, DataError, ModelLoadError, SplitError)):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
