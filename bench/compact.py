"""An exact engine switch on and off, side by side: compact word embeddings (train.compact_embeddings,
the default) or the top layer at [CLS] only (--setting cls_only_top_layer); training speed.

    .venv/bin/python bench/compact.py                    # one process, the default study's tasks
    .venv/bin/python bench/compact.py --concurrent 2     # two processes at once, as `--cores 2` runs jobs
    .venv/bin/python bench/compact.py --tasks rte --steps 4 --repeats 1   # a quick check
    .venv/bin/python bench/compact.py --setting cls_only_top_layer

A few-sample run reads a few thousand of the 30,522 word-embedding rows; with compaction only those
rows are trained (the same computation: tests/test_train.py::test_compact_embeddings_run_equals_dense_run).
Each measurement is pipeline.train.run() over the first --steps optimiser steps of the engine's batch
order at the default study's settings (params.yaml, condition debiased, seed 0, one thread), including
what run() does in those steps (e.g. the update-norm logging of the first update_log_steps steps). The two
modes alternate, --repeats times each; the report gives medians of training examples per second. With
--concurrent N, N processes run the same sequence at the same time (each single-threaded), which is
how a study runs its jobs on this machine; the medians are over all processes' measurements.
The last line is `ratio compact/dense: X.XX` (training examples per second, averaged over the tasks);
with --setting cls_only_top_layer, `ratio cls_only_top_layer on/off: X.XX` (the other switches as in
params.yaml; tests/test_train.py::test_cls_only_top_layer_run_equals_whole_layer_run shows it exact).
"""
from __future__ import annotations

import argparse
import datetime
import multiprocessing as mp
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402


SETTINGS = ("compact_embeddings", "cls_only_top_layer")


def measure(tasks, steps, repeats, threads=1, setting="compact_embeddings"):
    """[(task, mode, train examples/s, embedding rows)] in the order measured; mode "on"/"off"."""
    B.default_glue_dir()
    out = []
    for task in tasks:
        s = B.settings(task)
        feats = B.features(s)
        for _ in range(repeats):
            for on in (True, False):
                tm = B.ours_train(s.replace(**{setting: on}), feats, steps, threads)
                out.append((task, "on" if on else "off", tm["train_examples_per_s"], tm["embedding_rows"]))
                print(f"[{time.strftime('%H:%M:%S')}] {task} {out[-1][1]}: {out[-1][2]:.1f} ex/s",
                      file=sys.stderr, flush=True)
    return out


def _worker(args):
    return measure(*args)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", nargs="+", default=["sst-2", "sts-b", "rte", "cola"])
    ap.add_argument("--steps", type=int, default=24, help="optimiser steps per measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--concurrent", type=int, default=1, help="processes measuring at the same time")
    ap.add_argument("--setting", choices=SETTINGS, default="compact_embeddings", help="the switch measured")
    a = ap.parse_args(argv)
    import torch
    import transformers

    t0 = time.perf_counter()
    print(f"# bench/compact.py  {datetime.datetime.now().isoformat(timespec='seconds')}  torch {torch.__version__}"
          f"  transformers {transformers.__version__}  1 thread per process, {a.concurrent} process(es)")
    print(f"# {a.steps} optimiser steps per measurement, {a.repeats} repeats per mode (alternating), "
          f"default study settings (params.yaml), {a.setting} on and off\n")
    job = (a.tasks, a.steps, a.repeats, 1, a.setting)
    if a.concurrent > 1:
        with mp.get_context("spawn").Pool(a.concurrent) as pool:
            results = [r for rs in pool.map(_worker, [job] * a.concurrent) for r in rs]
    else:
        results = measure(*job)
    rows, ratios = [], []
    for task in a.tasks:
        on = B.median([r[2] for r in results if r[0] == task and r[1] == "on"])
        off = B.median([r[2] for r in results if r[0] == task and r[1] == "off"])
        n_rows = next(r[3] for r in results if r[0] == task and r[1] == "on")
        ratios.append(on / off)
        rows.append([task, n_rows, B.fmt(off), B.fmt(on), f"{on / off:.2f}"])
    compact = a.setting == "compact_embeddings"
    names = ("dense", "compact") if compact else ("off", "on")
    print(B.table(rows, ["task", "rows kept", f"{names[0]} ex/s", f"{names[1]} ex/s", f"{names[1]}/{names[0]}"]))
    print(f"\nelapsed {time.perf_counter() - t0:.0f} s")
    label = "compact/dense" if compact else f"{a.setting} on/off"
    print(f"ratio {label}: {sum(ratios) / len(ratios):.2f}")


if __name__ == "__main__":
    main()
