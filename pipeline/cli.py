"""Reproduce "Revisiting Few-sample BERT Fine-tuning" one workflow stage at a time.

A study normally runs through Snakemake (`snakemake --cores 2`) or DVC (`dvc repro`), which call these
commands with the right arguments. By hand:

  python -m pipeline validate --config params.yaml configs/smoke.yaml
      check a configuration (params.yaml plus overlays) before running anything
  python -m pipeline finetune --config params.yaml --task rte --condition debiased --seed 0 --out DIR
      one run of the study, its splits and features built in-process
  python -m pipeline <command> --help
      every option of a command

Each command reads its inputs, writes its outputs atomically, and fails with one line naming the
file, option or setting at fault (exit status 2).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys

log = logging.getLogger("pipeline")


def _setup_logging():
    logging.basicConfig(level=os.environ.get("PIPELINE_LOG", "INFO"),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)


def parser() -> argparse.ArgumentParser:
    """The command line: one subcommand per workflow stage, each option with its help."""
    p = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True, metavar="command")
    from .config import cmd_validate
    from .prepare import cmd_data, cmd_features, cmd_splits
    from .runner import cmd_finetune

    q = sub.add_parser("validate", help="check a configuration (params.yaml plus overlays)",
                       description="Check a study's configuration: every problem is listed, each naming its "
                                   "key; prints the study's results folder and number of runs when it is valid.")
    q.add_argument("--config", nargs="+", default=["params.yaml"], metavar="YAML",
                   help="params.yaml and overlays, merged in order (default: params.yaml)")
    q.set_defaults(fn=cmd_validate)

    q = sub.add_parser("data", help="load one GLUE task (local folder or Hub) and normalise its rows",
                       description="Load one GLUE task's training and labelled dev files, check them against "
                                   "the committed fingerprints, and write them as normalised rows.")
    q.add_argument("--task", required=True, help="a GLUE task (rte, mrpc, sts-b, cola, sst-2, qnli, qqp, mnli)")
    q.add_argument("--glue-dir", default=None,
                   help="a folder in GLUE's download layout (default: $GLUE_DIR, else the Hugging Face Hub)")
    q.add_argument("--out", required=True, help="output folder: train.jsonl, dev.jsonl, meta.json")
    q.set_defaults(fn=cmd_data)

    q = sub.add_parser("splits", help="make the train/val/test splits of one task",
                       description="Make one task's fixed training, validation and test splits from its "
                                   "normalised rows (seeds from the configuration, never a run's seed).")
    q.add_argument("--task", required=True, help="the GLUE task the rows belong to")
    q.add_argument("--data", required=True, help="the folder written by `data` (train.jsonl, dev.jsonl)")
    q.add_argument("--settings", required=True, metavar="JSON",
                   help="the split settings as JSON (pipeline.config.split_settings: split_seed, subset_seed, "
                        "train_size, val_source, val_size, test_size, regression_bin_width)")
    q.add_argument("--out", required=True, help="output folder: train.jsonl, val.jsonl, test.jsonl, meta.json")
    q.set_defaults(fn=cmd_splits)

    q = sub.add_parser("features", help="tokenise one task's splits once for a model",
                       description="Tokenise one task's splits for a model and maximum length, once for "
                                   "every run that uses them.")
    q.add_argument("--task", required=True, help="the GLUE task the splits belong to")
    q.add_argument("--splits", required=True, help="the folder written by `splits`")
    q.add_argument("--model", required=True,
                   help="minilm-l6 (the embedded model), a Hub id or a local folder with a tokenizer")
    q.add_argument("--max-seq-length", type=int, required=True, help="truncate pairs to this many tokens")
    q.add_argument("--out", required=True, help="the features file to write (.pt)")
    q.set_defaults(fn=cmd_features)

    q = sub.add_parser(
        "finetune", help="one run: task x condition x seed",
        description="Fine-tune once and write the run's directory (record.json, curve.csv, drift.csv, "
                    "updates.csv; model.safetensors when the setting save_checkpoint is true). The settings "
                    "come either resolved as JSON (what the workflow passes) or from the study's "
                    "configuration with --config, --task, --condition and --seed (resolved the same way). "
                    "The model and device are checked before any training.")
    q.add_argument("--settings", metavar="JSON",
                   help="the run's resolved settings as JSON (every key of pipeline.settings.RunSettings)")
    q.add_argument("--config", nargs="+", metavar="YAML",
                   help="params.yaml and overlays: resolve the settings of --task/--condition/--seed from "
                        "them (without --settings), and build the features from them (without --features)")
    q.add_argument("--task", help="with --config: the dataset (a GLUE task or a datasets: name)")
    q.add_argument("--condition", help="with --config: the condition (a sweep member by its full name, "
                                       "e.g. reinit_sweep-L2)")
    q.add_argument("--seed", type=int, help="with --config: the run's seed")
    q.add_argument("--features", help="tokenised features (.pt, from `features`); built in-process from "
                                      "--config when omitted")
    q.add_argument("--init-weights", metavar="SAFETENSORS",
                   help="weights to start the encoder from (intermediate-task transfer)")
    q.add_argument("--selection", help="the selection file of the condition's family (conditions with select:)")
    q.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    q.add_argument("--out", required=True, help="the run's output folder")
    q.set_defaults(fn=cmd_finetune)

    from . import commands_analysis  # registers the analysis commands

    commands_analysis.register(sub)
    from . import analysis_cli  # analyze, figures, report

    analysis_cli.register(sub)
    return p


def _log_imports(path: str, a, before: set) -> None:
    """Append {"fn", "modules"} (the package modules the command imported) to `path`: the ground truth
    tests/test_workflow.py compares with pipeline/codedeps.py's digest files (PIPELINE_IMPORTS_LOG)."""
    new = sorted(m for m in set(sys.modules) - before if m.startswith("pipeline."))
    line = json.dumps({"fn": f"{a.fn.__module__}.{a.fn.__name__}", "modules": new}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


def main(argv=None):
    _setup_logging()
    a = parser().parse_args(argv)
    before = set(sys.modules)
    try:
        a.fn(a)
        if os.environ.get("PIPELINE_IMPORTS_LOG"):
            _log_imports(os.environ["PIPELINE_IMPORTS_LOG"], a, before)
    except Exception as exc:  # one clear line for known error kinds, a traceback for the rest
        from .errors import ConfigError, RecordError

        known = (ConfigError, RecordError, FileNotFoundError)  # a missing input file: its name, one line
        if not isinstance(exc, known):  # these modules import torch: only when it can be one of theirs
            from .data import DataError
            from .model import ModelLoadError
            from .splits import SplitError

            known = (DataError, ModelLoadError, SplitError)
        if isinstance(exc, known):
            print(f"error: {exc}", file=sys.stderr)
            sys.exit(2)
        raise
