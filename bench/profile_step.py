"""torch.profiler summary of our training step (for docs/performance.md).

    .venv/bin/python bench/profile_step.py [--task rte] [--paper] [--steps 3] [--rows 15]

Builds the model, parameter groups, optimiser, features and batch order exactly as
pipeline.train.run() does (default study settings; --paper: batch 32, max_seq_length 128), then runs
the body of run()'s training loop step by step, each phase wrapped in a record_function label:
batch building (Examples.batch), forward, loss + backward, gradient clipping, the update-norm
logging of the first `update_log_steps` steps (copy before, foreach norms after), and the optimiser step.
Two warm-up steps, then --steps profiled steps. Prints the phases' share of the step, the top ops by
self CPU time, and the mean wall time of a step with and without the update-norm logging.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--task", default="rte")
    ap.add_argument("--paper", action="store_true", help="batch 32, max_seq_length 128 (issue 17's settings)")
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--timing-steps", type=int, default=6, help="steps per wall-time comparison")
    ap.add_argument("--rows", type=int, default=15)
    ap.add_argument("--micro-batch-tokens", type=int, default=None, help="override the study's token budget")
    a = ap.parse_args(argv)

    import torch
    import transformers
    from torch.profiler import ProfilerActivity, profile, record_function

    from pipeline import seeds
    from pipeline.drift import snapshot
    from pipeline.features import Examples, micro_batches
    from pipeline.optim import AdamW, linear_schedule, parameter_groups, set_lr
    from pipeline.tasks import task_spec
    from pipeline.model import cls_only_top_layer
    from pipeline.train import build_model, compact_embeddings, update_norms

    torch.set_num_threads(1)
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
    feats = B.features(s, cfgs)
    spec = task_spec(s.glue_task)
    model = build_model(s, spec)
    initial = snapshot(model)
    feats, anchors, pad, _ = compact_embeddings(model, feats, s, initial)
    if s.cls_only_top_layer:
        cls_only_top_layer(model)
    train = Examples(feats["train"], pad_id=pad)
    groups = parameter_groups(model, lr=s.lr, weight_decay=s.weight_decay, prior_wd=s.prior_wd,
                              llrd_eta=s.llrd_eta, initial=anchors)
    opt = AdamW(groups, lr=s.lr, betas=(s.adam_beta1, s.adam_beta2), eps=s.adam_eps,
                bias_correction=s.bias_correction)
    n_steps = 2 + a.steps + a.timing_steps
    batches = B.train_batches(s, len(train), n_steps)
    torch.manual_seed(seeds.stream_seed("dropout", s.data_seed))
    loss_fn = torch.nn.MSELoss(reduction="sum") if spec.is_regression else torch.nn.CrossEntropyLoss(reduction="sum")
    depths = list(dict.fromkeys(g["depth"] for g in groups))  # as run() logs update norms
    logged = [(depths.index(g["depth"]), p) for g in groups for p in g["params"]]
    log_params = [p for _, p in logged]
    log_depth = torch.tensor([d for d, _ in logged])
    log_buf = [p.detach().clone() for p in log_params]

    def step(k, batch_idx, update_log):
        model.train()
        set_lr(opt, s.lr, linear_schedule(k, n_steps, 0))
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for mb in micro_batches(batch_idx, train.lengths, s.micro_batch_tokens):
            with record_function("1 batch build (Examples.batch)"):
                b = train.batch(mb)
                labels = b.pop("labels")
            with record_function("2 forward"):
                logits = model(**b).logits.float()
            with record_function("3 loss + backward"):
                loss = loss_fn(logits[:, 0], labels) if spec.is_regression else loss_fn(logits, labels)
                loss = loss / len(batch_idx)
                loss.backward()
                loss_sum += float(loss)
        with record_function("4 clip_grad_norm_"):
            float(torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm))
        if update_log:
            with record_function("5 update log: copy"), torch.no_grad():
                torch._foreach_copy_(log_buf, log_params)
        with record_function("6 optimiser step"):
            opt.step()
        if update_log:
            with record_function("7 update log: norms"):
                update_norms(log_params, log_buf, log_depth, len(depths))
        return loss_sum

    it = iter(enumerate(batches))
    for _ in range(2):
        k, b = next(it)
        step(k, b, True)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(a.steps):
            k, b = next(it)
            step(k, b, True)
    lengths = train.lengths
    prof_batches = batches[2:2 + a.steps]
    real, padded = B.token_counts(prof_batches, lengths, s.micro_batch_tokens)
    print(f"# bench/profile_step.py: task {a.task}, batch {s.batch_size}, max_seq_length {s.max_seq_length}, "
          f"micro_batch_tokens {s.micro_batch_tokens}, attn {s.attn_implementation}, 1 thread; "
          f"{a.steps} profiled steps after 2 warm-up steps ({real} real / {padded} padded tokens)")
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
