"""torch.profiler summary of the engine's training step (for docs/performance.md).

    .venv/bin/python bench/profile_step.py [--task rte] [--paper] [--steps 3] [--rows 15]

Starts a run exactly as pipeline.train.run() does, by calling the engine's own `pipeline.train.start`
(default study settings; --paper: batch 32, max_seq_length 128), then calls the engine's own
`pipeline.train.train_step` on the run's first batches, with the engine's update-norm log
(`pipeline.train.UpdateLog`) around it as run() has it. Nothing of the step is copied here: the phase
labels (record_function) are attached from outside, around the engine's own calls (Examples.batch,
the model's forward, the loss, Tensor.backward, clip_grad_norm_, the optimiser step), so the
measured step is the one the studies run. The phases: batch building, forward, loss, backward,
gradient clipping, the update-norm logging of the first `update_log_steps` steps (copy before, foreach
norms after), and the optimiser step. Two warm-up steps, then --steps profiled steps. Prints the
phases' share of the step, the top ops by self CPU time, and the median wall time of a step with and
without the update-norm logging.
"""
from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402


@contextlib.contextmanager
def phase_labels(t):
    """record_function labels around the engine's own calls inside `train.train_step` for the
    trainer `t` (pipeline.train.Trainer); everything is restored on exit."""
    import torch
    from torch.profiler import record_function

    def labelled(name, fn):
        def call(*a, **k):
            with record_function(name):
                return fn(*a, **k)
        return call

    def around(name):  # (pre-hook, post-hook) opening and closing one label; hooks must return None
        label = record_function(name)
        return lambda *_: label.__enter__() and None, lambda *_: label.__exit__(None, None, None) and None

    forward, step = around("2 forward"), around("7 optimiser step")
    handles = [t.model.register_forward_pre_hook(forward[0]), t.model.register_forward_hook(forward[1]),
               t.opt.register_step_pre_hook(step[0]), t.opt.register_step_post_hook(step[1])]
    saved = (t.train.batch, t.loss_fn, torch.Tensor.backward, torch.nn.utils.clip_grad_norm_)
    t.train.batch = labelled("1 batch build (Examples.batch)", saved[0])
    t.loss_fn = labelled("3 loss", saved[1])
    torch.Tensor.backward = labelled("4 backward", saved[2])
    torch.nn.utils.clip_grad_norm_ = labelled("5 clip_grad_norm_", saved[3])
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        del t.train.batch  # the instance attribute: Examples.batch again
        t.loss_fn, torch.Tensor.backward, torch.nn.utils.clip_grad_norm_ = saved[1:]


def measured_step(s, started, log_steps: int):
    """step(k, batch_idx, update_log) -> the engine's StepResult: `pipeline.train.train_step` for
    optimiser step k of the started run, with the engine's update-norm log around it when
    `update_log` (as run() does for its first `update_log_steps` steps)."""
    from torch.profiler import record_function

    from pipeline import train

    updates = train.UpdateLog(started.groups, log_steps, started.trainer.device)

    def step(k, batch_idx, update_log):
        if update_log:
            with record_function("6 update log: copy"):
                updates.before(k)
        out = train.train_step(s, started.trainer, k, batch_idx)
        if update_log:
            with record_function("8 update log: norms"):
                updates.after(k)
        return out

    return step


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="rte")
    ap.add_argument("--paper", action="store_true", help="batch 32, max_seq_length 128 (issue 17's settings)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--timing-steps", type=int, default=6, help="steps per wall-time comparison")
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--micro-batch-tokens", type=int, default=None, help="override the study's token budget")
    a = ap.parse_args(argv)

    import transformers
    from torch.profiler import ProfilerActivity, profile

    from pipeline import train

    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    cfgs = [B.PARAMS]
    if a.paper:
        p = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "paper.yaml"
        p.write_text("splits: {train_size: 1000, val_size: null, test_size: null}\n"
                     "train: {batch_size: 32, max_seq_length: 128, lr: 2.0e-5, epochs: 3}\n")
        cfgs.append(p)
    s = B.settings(a.task, cfgs)
    if a.micro_batch_tokens is not None:
        s = s.replace(micro_batch_tokens=a.micro_batch_tokens)
    n_steps = 2 + a.steps + a.timing_steps
    feats = B.features(s, cfgs)
    n_train = len(feats["train"]["labels"])
    if train.total_steps(n_train, s.batch_size, s.epochs, s.max_steps) < n_steps:  # a run long enough
        s = s.replace(max_steps=n_steps)
    started = train.start(s, feats, threads=1)  # the engine's start: model, optimiser, schedule, streams
    step = measured_step(s, started, n_steps)
    it = iter(enumerate(started.batches[:n_steps], start=1))
    with phase_labels(started.trainer):
        for _ in range(2):
            k, b = next(it)
            step(k, b, True)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(a.steps):
                k, b = next(it)
                step(k, b, True)
    lengths = started.trainer.train.lengths
    prof_batches = started.batches[2:2 + a.steps]
    real, padded = B.token_counts(prof_batches, lengths, s.micro_batch_tokens)
    print(f"# bench/profile_step.py: task {a.task}, batch {s.batch_size}, max_seq_length {s.max_seq_length}, "
          f"micro_batch_tokens {s.micro_batch_tokens}, attn {s.attn_implementation}, 1 thread; "
          f"{a.steps} profiled steps of pipeline.train.train_step after 2 warm-up steps "
          f"({real} real / {padded} padded tokens)")
    ka = prof.key_averages()
    phases = [e for e in ka if e.key[:1].isdigit() and " " in e.key]
    total = sum(e.cpu_time_total for e in phases)
    print("\nPhases (record_function, CPU time incl. children, share of the profiled steps):")
    for e in sorted(phases, key=lambda e: e.key):
        print(f"  {e.key:<34} {e.cpu_time_total / 1e3 / a.steps:8.1f} ms/step  {e.cpu_time_total / total:6.1%}")
    print(f"\nTop {a.rows} ops by self CPU time:")
    print(ka.table(sort_by="self_cpu_time_total", row_limit=a.rows, max_name_column_width=40))

    with_log, without = [], []
    for k, b in list(it)[: a.timing_steps]:  # the same batch twice, with and without, interleaved
        for flag, acc in ((True, with_log), (False, without)):
            t0 = time.perf_counter()
            step(k, b, flag)
            acc.append(time.perf_counter() - t0)
    print(f"Median wall time per step over {a.timing_steps} batches, each run with and without the update-norm "
          f"logging (no profiler): {B.median(with_log) * 1e3:.0f} ms with, {B.median(without) * 1e3:.0f} ms "
          f"without (the engine logs the first {s.update_log_steps} steps of every run)")


if __name__ == "__main__":
    main()
