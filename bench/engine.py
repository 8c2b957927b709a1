"""The engine's speed figures (issue 17): training and evaluation examples per second on the
embedded model for RTE and CoLA at the paper's settings, with and without micro-batching, and the
wall time of one full run (RTE, 1,000 training examples, 3 epochs) including process start-up.

    .venv/bin/python bench/engine.py            # the figures
    .venv/bin/python bench/engine.py --quick    # a smoke test (3 steps, a 64-example full run)
    .venv/bin/python bench/engine.py --sweep    # also sweep micro_batch_tokens / eval_batch_tokens

The paper's settings, on the embedded model: params.yaml with an overlay (written to a temporary
file) of batch_size 32, max_seq_length 128, lr 2e-5, epochs 3, train_size 1000, whole dev halves
(RTE 138/139, CoLA 521/522). One thread. "With micro-batching" is the configured
micro_batch_tokens (params.yaml); "without" is micro_batch_tokens 0 (each optimiser batch padded to
its own longest sequence). Evaluation "with" is the engine's predict() (length-sorted batches of at
most eval_batch_tokens padded tokens); "without" is batches of 32 in the split's order, each padded
to its own longest sequence. Training throughput is pipeline.train.run() over the first --steps
optimiser steps of the engine's batch order (the same batches in both modes); evaluation is the
median of --repeats passes over the validation half.
"""
from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

PAPER_OVERLAY = ("splits: {train_size: 1000, val_size: null, test_size: null}\n"
                 "train: {batch_size: 32, max_seq_length: 128, lr: 2.0e-5, epochs: 3}\n")
QUICK_OVERLAY = ("splits: {train_size: 64, val_size: null, test_size: null}\n"
                 "train: {batch_size: 32, max_seq_length: 128, lr: 2.0e-5, epochs: 1}\n")


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def overlay(text: str) -> Path:
    p = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "overlay.yaml"
    p.write_text(text)
    return p


def measure_train(s, feats, steps, budget, threads=1):
    lengths = (feats["train"]["offsets"][1:] - feats["train"]["offsets"][:-1]).tolist()
    batches = B.train_batches(s, len(lengths), steps)
    real, padded = B.token_counts(batches, lengths, budget)
    tm = B.ours_train(s.replace(micro_batch_tokens=budget), feats, steps, threads)
    return {"train_ex_s": tm["train_examples_per_s"], "real_tok_s": real / tm["train_s"],
            "pad_share": 1 - real / padded, "train_s": tm["train_s"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 steps, 1 repeat, a 64-example full run")
    ap.add_argument("--steps", type=int, default=12, help="optimiser steps per training measurement")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--tasks", default="rte,cola")
    ap.add_argument("--sweep", action="store_true",
                    help="also sweep micro_batch_tokens and eval_batch_tokens (paper and default settings)")
    ap.add_argument("--sweep-settings", default="paper,default",
                    help="which settings the sweep covers: paper, default or both (comma-separated)")
    ap.add_argument("--sweep-only", action="store_true",
                    help="only the sweep (no with/without table, no full run)")
    ap.add_argument("--no-full-run", action="store_true")
    a = ap.parse_args(argv)
    if a.quick:
        a.steps, a.repeats = 3, 1
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    t_begin = time.perf_counter()

    import torch
    import transformers

    torch.set_num_threads(1)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    paper_cfg = [B.PARAMS, overlay(PAPER_OVERLAY)]
    print(f"# bench/engine.py  {datetime.datetime.now().isoformat(timespec='seconds')}  torch {torch.__version__}  "
          f"transformers {transformers.__version__}  1 thread")
    what = ("the sweep only, settings: " + ", ".join(x.strip() for x in a.sweep_settings.split(","))
            if a.sweep_only else "at the paper's settings (batch 32, max_seq_length 128, train_size 1000)")
    print(f"# embedded minilm-l6, {what}; "
          f"training: first {a.steps} optimiser steps; eval: median of {a.repeats} passes over the validation half")
    rows, sweep_rows, eval_rows = [], [], []
    sweep_settings = [x.strip() for x in a.sweep_settings.split(",") if x.strip()]
    if a.sweep_only:
        a.sweep, a.no_full_run = True, True
    for task in tasks:
        s = B.settings(task, paper_cfg)
        feats = None
        if not a.sweep_only or "paper" in sweep_settings:
            log(f"{task}: features")
            feats = B.features(s, paper_cfg)
        if not a.sweep_only:
            n = (len(feats["train"]["labels"]), len(feats["val"]["labels"]), len(feats["test"]["labels"]))
            mb = s.micro_batch_tokens
            log(f"{task}: train with micro-batching ({mb})")
            on = measure_train(s, feats, a.steps, mb)
            log(f"{task}: train without micro-batching")
            off = measure_train(s, feats, a.steps, 0)
            log(f"{task}: eval")
            ev_on = B.ours_eval(s, feats, a.repeats)
            ev_off = B.unsorted_eval(s, feats, s.batch_size, a.repeats)
            rows.append([task, f"{n[0]}/{n[1]}/{n[2]}", f"on ({mb})", B.fmt(on["train_ex_s"]),
                         B.fmt(on["real_tok_s"], 0), B.fmt(on["pad_share"], 2), B.fmt(ev_on["eval_ex_s"]),
                         f"predict, eval_batch_tokens {s.eval_batch_tokens}"])
            rows.append([task, "", "off (0)", B.fmt(off["train_ex_s"]), B.fmt(off["real_tok_s"], 0),
                         B.fmt(off["pad_share"], 2), B.fmt(ev_off["eval_ex_s"]), f"unsorted batches of {s.batch_size}"])
        if a.sweep:
            for label, cfgs in (("paper", paper_cfg), ("default", [B.PARAMS])):
                if label not in sweep_settings:
                    continue
                s2 = B.settings(task, cfgs)
                f2 = feats if label == "paper" else B.features(s2, cfgs)
                cap = s2.batch_size * s2.max_seq_length
                for budget in sorted({0, 128, 256, 384, 512, 768, 1024, 1536, 2048, 4096} - {cap}
                                     | {s2.micro_batch_tokens}):
                    if budget > cap:
                        continue
                    log(f"{task}/{label}: micro_batch_tokens {budget}")
                    m = measure_train(s2, f2, a.steps, budget)
                    sweep_rows.append([task, label, budget, B.fmt(m["train_ex_s"]), B.fmt(m["real_tok_s"], 0),
                                       B.fmt(m["pad_share"], 2)])
                for budget in (256, 512, 1024, 2048, 4096, 8192):
                    log(f"{task}/{label}: eval_batch_tokens {budget}")
                    e = B.ours_eval(s2.replace(eval_batch_tokens=budget), f2, a.repeats)
                    eval_rows.append([task, label, budget, B.fmt(e["eval_ex_s"])])
                e = B.unsorted_eval(s2, f2, s2.batch_size, a.repeats)
                eval_rows.append([task, label, f"unsorted b{s2.batch_size}", B.fmt(e["eval_ex_s"])])
    print()
    if rows:
        print(B.table(rows, ["task", "train/val/test", "micro-batching", "train ex/s", "real tok/s",
                             "pad share", "eval ex/s", "eval batching"]))
    if sweep_rows:
        print("\nSweep of micro_batch_tokens (0 = whole batch; paper = batch 32 x 128, default = params.yaml "
              "batch 16 x 64):")
        print(B.table(sweep_rows, ["task", "settings", "micro_batch_tokens", "train ex/s", "real tok/s", "pad share"]))
        print("\nSweep of eval_batch_tokens (engine predict(), validation half):")
        print(B.table(eval_rows, ["task", "settings", "eval_batch_tokens", "eval ex/s"]))
    if not a.no_full_run:
        log("full run (RTE) as a subprocess")
        cfgs = [B.PARAMS, overlay(QUICK_OVERLAY)] if a.quick else paper_cfg
        fr = B.full_run_subprocess("rte", cfgs, Path(tempfile.mkdtemp(prefix="bench-run-")) / "out")
        t = fr["timing"]
        print(f"\nFull run: `{fr['cmd']}` (overlay: {'64 examples, 1 epoch' if a.quick else '1,000 training examples, 3 epochs, batch 32, max_seq_length 128, lr 2e-5'})")
        print(f"  {fr['total_steps']} steps, {fr['n_evals']} evaluations: wall {fr['wall_s']:.1f} s from spawn to exit "
              f"(run() {t['wall_s']:.1f} s: training {t['train_s']:.1f} s at {t['train_examples_per_s']:.1f} ex/s, "
              f"evaluation {t['eval_s']:.1f} s at {t['eval_examples_per_s']:.1f} ex/s; "
              f"outside run() {fr['wall_s'] - t['wall_s']:.1f} s)")
    print(f"elapsed {time.perf_counter() - t_begin:.0f} s")


if __name__ == "__main__":
    main()
