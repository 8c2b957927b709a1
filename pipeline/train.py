"""One fine-tuning run, as the paper's recipe reads: load, (re-)initialise, build the optimiser,
train with warm-up and linear decay, evaluate on validation `num_evals` times, keep the best
checkpoint in memory, report validation and test metrics of the best and of the last checkpoint.

A run whose training loss (or, without mixed precision, gradient norm) becomes non-finite has
diverged: training stops at that step without updating the weights, the weights it stopped with are
evaluated on validation (as the last checkpoint) and on test, and the record says `diverged: true`
and `diverged_step` (a result of the study, e.g. of BERTAdam, not a crash).
"""
from __future__ import annotations

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from . import seeds
from .drift import block_drift, snapshot, start_sq_norms, tensor_drift
from .features import PAD_ID, Examples, micro_batches
from .metrics import compute_metrics, prediction_spread
from .model import (apply_mixout, cls_only_top_layer, compact_word_embeddings, dense_state_dict, init_head,
                    load_model, reinit_top_layers)
from .optim import AdamW, linear_schedule, parameter_groups, set_lr
from .settings import RunSettings
from .splits import majority_baseline
from .tasks import task_spec

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    record: dict
    curve: pd.DataFrame
    drift: pd.DataFrame
    state_dict: dict | None = field(default=None, repr=False)
    updates: pd.DataFrame | None = None


def total_steps(n_train: int, batch_size: int, epochs: int, max_steps: int | None) -> int:
    """`max_steps` optimiser steps when set, else `epochs` passes over the training set (the last
    batch of an epoch may be smaller)."""
    if max_steps is not None:
        return int(max_steps)
    return math.ceil(n_train / batch_size) * int(epochs)


def eval_steps(total: int, num_evals: int) -> list[int]:
    """Every total // num_evals steps plus the last step (the official schedule)."""
    every = max(1, total // max(1, num_evals))
    steps = list(range(every, total + 1, every))
    if not steps or steps[-1] != total:
        steps.append(total)
    return steps


def _improves(score: float, best: float) -> bool:
    """Strict improvement (the first best is kept); a NaN never wins, and any number beats a NaN."""
    if math.isnan(score):
        return False
    return math.isnan(best) or score > best


def pick_device(setting: str) -> torch.device:
    """The device of `train.device` (auto: CUDA when available); `cuda` without CUDA is a ConfigError."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting == "cuda" and not torch.cuda.is_available():
        from .config import ConfigError

        raise ConfigError(["train.device: 'cuda', but CUDA is not available on this machine "
                           f"(torch {torch.__version__}); allowed here: auto, cpu"])
    return torch.device(setting)


def batch_order(n: int, batch_size: int, total: int, generator: torch.Generator):
    """Optimiser batches of example indices: a fresh shuffle each epoch, the last batch of an epoch
    possibly smaller (no examples dropped), cycled until `total` steps."""
    out = []
    while len(out) < total:
        perm = torch.randperm(n, generator=generator).tolist()
        out += [perm[i:i + batch_size] for i in range(0, n, batch_size)]
    return out[:total]


class Progress:
    """A bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, desc: str):
        self.total, self.desc, self.bar = total, desc, None
        self.every = max(1, total // 10)
        if sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=desc, leave=False)

    def update(self, step: int, loss: float) -> None:
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{loss:.4f}")
        elif step % self.every == 0 or step == self.total:
            log.info("%s step %d/%d loss %.4f", self.desc, step, self.total, loss)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def predict(model, examples: Examples, device, token_budget: int) -> np.ndarray:
    """Predictions in the split's order; batches are length-sorted to waste little padding."""
    model.eval()
    order = sorted(range(len(examples)), key=lambda i: (-int(examples.lengths[i]), i))
    out = [None] * len(examples)
    for mb in micro_batches(order, examples.lengths, token_budget):
        batch = {k: v.to(device) for k, v in examples.batch(mb).items() if k != "labels"}
        logits = model(**batch).logits.float().cpu()
        vals = logits[:, 0] if logits.shape[1] == 1 else logits.argmax(-1)
        for i, v in zip(mb, vals.tolist()):
            out[i] = v
    return np.asarray(out)


def evaluate(model, examples: Examples, spec, device, token_budget: int):
    pred = predict(model, examples, device, token_budget)
    gold = examples.labels.numpy()
    return compute_metrics(spec, pred, gold), pred


def update_norms(params: list, before: list, group: torch.Tensor, n_groups: int) -> list[float]:
    """L2 norm of (params - before) per group: group[i] names the group of params[i]."""
    with torch.no_grad():
        diffs = torch._foreach_sub([p.detach() for p in params], before)
        sq = torch.stack(torch._foreach_norm(diffs)).double().pow(2)
        return torch.zeros(n_groups, dtype=torch.float64, device=sq.device).index_add_(0, group, sq).sqrt().tolist()


def check_model(s: RunSettings, model_config: dict) -> None:
    """Raise a ConfigError naming every setting the model (its config.json as a dict) cannot honour."""
    from .architecture import model_problems

    problems = model_problems(model_config, model=s.model, reinit_layers=s.reinit_layers,
                              reinit_pooler=s.reinit_pooler, llrd_eta=s.llrd_eta,
                              max_seq_length=s.max_seq_length)
    if problems:
        from .config import ConfigError

        raise ConfigError(problems)


def build_model(s: RunSettings, spec, init_weights: dict | None = None):
    """Load, then draw the head and the re-initialised layers from their own streams, then Mixout."""
    model = load_model(s.model, spec.num_labels, dropout=s.dropout, attn_implementation=s.attn_implementation)
    check_model(s, model.config.to_dict())  # before anything is drawn
    if init_weights is not None:  # intermediate-task weights: encoder and pooler, not the head
        base = {k: v for k, v in init_weights.items() if k.startswith(model.base_model_prefix + ".")}
        missing, unexpected = model.load_state_dict(base, strict=False)
        if unexpected:
            raise ValueError(f"intermediate checkpoint has unexpected keys: {unexpected[:5]}")
    init_head(model, seeds.generator("head_init", s.init_seed))
    if s.reinit_layers or s.reinit_pooler:
        reinit_top_layers(model, s.reinit_layers, s.reinit_pooler, generator=seeds.generator("reinit", s.init_seed))
    return model


def compact_embeddings(model, feats: dict, s: RunSettings, initial: dict):
    """Train only the word-embedding rows the run reads, when the settings allow it (exact: see
    pipeline.model.CompactEmbedding). Returns (features with remapped ids, the optimiser's anchors,
    the padding id, the number of rows kept or None when not compacted)."""
    # Exact only while no rows but the ones read can move: weight decay toward zero would shrink the
    # others too (pre-trained weight decay leaves them: they stay at their anchor).
    if not s.compact_embeddings or s.weight_decay:
        return feats, initial, PAD_ID, None
    lookup = compact_word_embeddings(
        model, [feats[k]["ids"] for k in ("train", "val", "test")] + [torch.tensor([PAD_ID])])
    if lookup is None:
        return feats, initial, PAD_ID, None
    feats = {k: dict(feats[k], ids=lookup[feats[k]["ids"]]) for k in ("train", "val", "test")}
    emb = model.get_input_embeddings()
    anchors = dict(initial, **{n: p.detach().clone() for n, p in model.named_parameters() if p is emb.weight})
    return feats, anchors, int(lookup[PAD_ID]), len(emb.rows)


def run(s: RunSettings, feats: dict, *, init_weights: dict | None = None, threads: int = 1,
        keep_state: bool = False) -> RunResult:
    """Fine-tune once with the resolved settings `s` on tokenised features `feats`. `keep_state`:
    return the last weights (RunResult.state_dict), e.g. to save them."""
    if not isinstance(s, RunSettings):
        raise TypeError(f"run() takes a RunSettings (RunSettings.from_dict(...)), got {type(s).__name__}")
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    spec = task_spec(s.glue_task)
    device = pick_device(s.device)
    model = build_model(s, spec, init_weights)
    if s.mixout_p:
        apply_mixout(model, s.mixout_p, seeds.generator("mixout", s.data_seed, device.type))
    model.to(device)
    initial = snapshot(model)
    feats, anchors, pad, n_rows = compact_embeddings(model, feats, s, initial)
    cls_only = s.cls_only_top_layer and cls_only_top_layer(model)
    train, val, test = (Examples(feats[k], pad_id=pad) for k in ("train", "val", "test"))
    groups = parameter_groups(model, lr=s.lr, weight_decay=s.weight_decay, prior_wd=s.prior_wd,
                              llrd_eta=s.llrd_eta, initial=anchors)
    opt = AdamW(groups, lr=s.lr, betas=(s.adam_beta1, s.adam_beta2), eps=s.adam_eps,
                bias_correction=s.bias_correction)
    total = total_steps(len(train), s.batch_size, s.epochs, s.max_steps)
    warmup = int(s.warmup_ratio * total)
    evals = set(eval_steps(total, s.num_evals))
    batches = batch_order(len(train), s.batch_size, total, seeds.generator("batch_order", s.data_seed))
    torch.manual_seed(seeds.stream_seed("dropout", s.data_seed))  # the global RNG is dropout's alone
    use_amp = device.type == "cuda" and s.amp
    scaler = torch.amp.GradScaler("cuda") if use_amp else None
    loss_fn = torch.nn.MSELoss(reduction="sum") if spec.is_regression else torch.nn.CrossEntropyLoss(reduction="sum")
    sel = s.selection_metric

    curve, drift_rows, update_rows = [], [], []
    n_update_log = s.update_log_steps
    # The update norm per depth (Fig. 1: BERTAdam's inflated early updates): the parameters are copied
    # into preallocated buffers before the step and the per-tensor norms of the differences are taken
    # with foreach kernels afterwards, with one host sync per logged step.
    depths = list(dict.fromkeys(g["depth"] for g in groups))
    logged = [(depths.index(g["depth"]), p) for g in groups for p in g["params"]]
    log_params = [p for _, p in logged]
    log_depth = torch.tensor([d for d, _ in logged], device=device)
    log_buf = [p.detach().clone() for p in log_params] if n_update_log else None

    sq_norms = start_sq_norms(initial)

    def record_drift(step):
        blocks = block_drift(tensor_drift(initial, model, sq_norms), model)
        drift_rows.extend({"step": step, "level": "block", "name": r.name, "l2": r.l2, "rel": r.rel}
                          for r in blocks.itertuples())

    record_drift(0)
    best = {"score": -math.inf, "step": None, "state": None, "val": None}
    evaluated: list[int] = []
    t_train = time.perf_counter()
    eval_time, n_seen = 0.0, 0
    diverged_step = None
    desc = f"{s.task}/{s.condition}/seed{s.seed}"
    progress = Progress(total, desc)
    for step, batch_idx in enumerate(batches, start=1):
        model.train()
        factor = linear_schedule(step - 1, total, warmup)
        set_lr(opt, s.lr, factor)
        opt.zero_grad(set_to_none=True)
        loss_sum = 0.0
        for mb in micro_batches(batch_idx, train.lengths, s.micro_batch_tokens):
            b = {k: v.to(device) for k, v in train.batch(mb).items()}
            labels = b.pop("labels")
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                logits = model(**b).logits
            logits = logits.float()
            loss = loss_fn(logits[:, 0], labels) if spec.is_regression else loss_fn(logits, labels)
            loss = loss / len(batch_idx)  # the mean over the optimiser batch, not over micro-batches
            (scaler.scale(loss) if scaler else loss).backward()
            loss_sum += float(loss.detach())
        if scaler:
            scaler.unscale_(opt)
        grad_norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), s.max_grad_norm))
        row = {"step": step, "lr": s.lr * factor, "train_loss": loss_sum, "grad_norm": grad_norm}
        # Diverged: a non-finite loss, or a non-finite gradient that would make the weights non-finite
        # (with mixed precision the scaler skips such steps itself). No update is made with it.
        if not math.isfinite(loss_sum) or (scaler is None and not math.isfinite(grad_norm)):
            diverged_step = step
            log.warning("%s diverged at step %d of %d (training loss %s, gradient norm %s): training stopped, "
                        "the weights of step %d are evaluated as the last checkpoint",
                        desc, step, total, loss_sum, grad_norm, step - 1)
        else:
            log_update = step <= n_update_log
            if log_update:
                with torch.no_grad():
                    torch._foreach_copy_(log_buf, log_params)
            if scaler:
                scaler.step(opt)
                scaler.update()
            else:
                opt.step()
            if log_update:
                update_rows.extend({"step": step, "name": d, "update_l2": v}
                                   for d, v in zip(depths, update_norms(log_params, log_buf, log_depth, len(depths))))
            n_seen += len(batch_idx)
        if step in evals or diverged_step is not None:
            t0 = time.perf_counter()
            scores, _ = evaluate(model, val, spec, device, s.eval_batch_tokens)
            eval_time += time.perf_counter() - t0
            evaluated.append(step)
            row.update({f"val_{k}": v for k, v in scores.items()})
            score = scores[sel]
            if best["state"] is None or _improves(score, best["score"]):
                best.update(score=score, step=step, val=scores,
                            state={k: v.detach().clone() for k, v in model.state_dict().items()})
            record_drift(step)
        curve.append(row)
        if diverged_step is not None:
            break
        progress.update(step, loss_sum)
    progress.close()
    last_step = curve[-1]["step"]
    train_time = time.perf_counter() - t_train - eval_time

    last_val = {k[4:]: v for k, v in curve[-1].items() if k.startswith("val_")}
    t0 = time.perf_counter()
    test_last, pred_last = evaluate(model, test, spec, device, s.eval_batch_tokens)
    final_tensors = tensor_drift(initial, model, sq_norms)
    last_state = dense_state_dict(model) if keep_state else None
    if best["step"] == last_step:  # the best checkpoint is the last one: same weights, same predictions
        test_best, pred_best = test_last, pred_last
    else:
        model.load_state_dict(best["state"])
        test_best, pred_best = evaluate(model, test, spec, device, s.eval_batch_tokens)
    eval_time += time.perf_counter() - t0
    n_eval = len(evaluated) * len(val) + (1 if best["step"] == last_step else 2) * len(test)

    drift = pd.DataFrame(drift_rows)
    drift = pd.concat([drift, final_tensors[["name", "l2", "rel"]].assign(step=last_step, level="tensor")],
                      ignore_index=True)[["step", "level", "name", "l2", "rel"]]
    record = {
        "task": s.task, "glue_task": spec.name, "condition": s.condition, "seed": s.seed,
        "init_seed": s.init_seed, "data_seed": s.data_seed,
        "metric": s.report_metric, "selection_metric": sel,
        "total_steps": total, "warmup_steps": warmup, "eval_steps": evaluated,
        "diverged": diverged_step is not None, "diverged_step": diverged_step,
        "n_train": len(train), "n_val": len(val), "n_test": len(test),
        "best_step": best["step"],
        "val_best": best["val"], "val_last": last_val,
        "test_best": test_best, "test_last": test_last,
        "spread_best": prediction_spread(spec, pred_best), "spread_last": prediction_spread(spec, pred_last),
        "majority_test": majority_baseline(spec, test.labels.tolist()),
        "label_std_test": float(np.std(test.labels.numpy().astype(np.float64))),
        "device": device.type, "threads": threads, "embedding_rows": n_rows, "cls_only_top_layer": cls_only,
        "timing": {"wall_s": time.perf_counter() - t_start, "train_s": train_time, "eval_s": eval_time,
                   "train_examples_per_s": n_seen / train_time if train_time > 0 else None,
                   "eval_examples_per_s": n_eval / eval_time if eval_time > 0 else None},
    }
    return RunResult(record, pd.DataFrame(curve), drift,
                     state_dict=(last_state if keep_state else None),
                     updates=pd.DataFrame(update_rows, columns=["step", "name", "update_l2"]))


def save_checkpoint(state_dict: dict, path: Path) -> None:
    from safetensors.torch import save_file

    from .io import atomic_save

    atomic_save(path, lambda tmp: save_file({k: v.contiguous() for k, v in state_dict.items()}, tmp))
