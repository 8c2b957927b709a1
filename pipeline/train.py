"""One fine-tuning run, as the paper's recipe reads: load, (re-)initialise, build the optimiser,
train with warm-up and linear decay, evaluate on validation `num_evals` times, keep the best
checkpoint in memory, report validation and test metrics of the best and of the last checkpoint.

`run` is three parts: `start` (the model, the optimiser, the schedule and the random streams),
`train_step` (one optimiser step: lr factor, micro-batch forward and backward, clip, Adam step; the
benchmarks in bench/ time this very function) called once per step, with the evaluations, the
update-norm log and the timing around it, and `finish` (test metrics and the run's record).

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
from .errors import ConfigError
from .features import Examples, batching, micro_batches
from .metrics import compute_metrics, prediction_spread
from .model import (apply_mixout, cls_only_top_layer, compact_word_embeddings, dense_state_dict, init_head,
                    load_model)
from .optim import AdamW, applied_weight_decay, linear_schedule, parameter_groups, set_lr
from .reinit import reinit_top_layers
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
    pad = batching(feats["train"])["pad_id"]  # the tokenizer's, recorded with the features
    if not s.compact_embeddings or applied_weight_decay(s.weight_decay, s.weight_decay_impl):
        return feats, initial, pad, None
    lookup = compact_word_embeddings(
        model, [feats[k]["ids"] for k in ("train", "val", "test")] + [torch.tensor([pad])])
    if lookup is None:
        return feats, initial, pad, None
    feats = {k: dict(feats[k], ids=lookup[feats[k]["ids"]]) for k in ("train", "val", "test")}
    emb = model.get_input_embeddings()
    anchors = dict(initial, **{n: p.detach().clone() for n, p in model.named_parameters() if p is emb.weight})
    return feats, anchors, int(lookup[pad]), len(emb.rows)


# ---- the run: start, step, finish -----------------------------------------------------------------

@dataclass
class Trainer:
    """What one optimiser step reads and changes (built by `start`)."""
    model: torch.nn.Module
    opt: AdamW
    scaler: torch.amp.GradScaler  # disabled (a pass-through) unless mixed precision runs on CUDA
    loss_fn: torch.nn.Module      # a sum over the examples; the step divides by the batch size
    train: Examples
    device: torch.device
    use_amp: bool
    regression: bool
    total: int                    # optimiser steps of the run
    warmup: int                   # warm-up steps of the schedule


@dataclass
class StepResult:
    lr: float
    train_loss: float
    grad_norm: float
    diverged: bool                # no update was made


def train_step(s: RunSettings, t: Trainer, step: int, batch_idx: list[int]) -> StepResult:
    """Optimiser step `step` (1-based) on the training examples `batch_idx`, as the recipe reads:
    the schedule's lr factor; the loss averaged over the batch, accumulated over micro-batches of at
    most `micro_batch_tokens` padded tokens; the global gradient clip; the Adam step. A non-finite loss
    (or, without mixed precision, gradient norm) is a divergence: the weights are not updated."""
    t.model.train()
    factor = linear_schedule(step - 1, t.total, t.warmup)
    set_lr(t.opt, s.lr, factor)
    t.opt.zero_grad(set_to_none=True)
    loss_sum = 0.0
    for mb in micro_batches(batch_idx, t.train.lengths, s.micro_batch_tokens):
        b = {k: v.to(t.device) for k, v in t.train.batch(mb).items()}
        labels = b.pop("labels")
        with torch.autocast("cuda", dtype=torch.float16, enabled=t.use_amp):
            logits = t.model(**b).logits
        logits = logits.float()
        loss = t.loss_fn(logits[:, 0] if t.regression else logits, labels)
        loss = loss / len(batch_idx)  # the mean over the optimiser batch, not over micro-batches
        t.scaler.scale(loss).backward()
        loss_sum += float(loss.detach())
    t.scaler.unscale_(t.opt)
    grad_norm = float(torch.nn.utils.clip_grad_norm_(t.model.parameters(), s.max_grad_norm))
    # with mixed precision the scaler itself skips a step whose gradient is not finite
    diverged = not math.isfinite(loss_sum) or (not t.scaler.is_enabled() and not math.isfinite(grad_norm))
    if not diverged:
        t.scaler.step(t.opt)
        t.scaler.update()
    return StepResult(s.lr * factor, loss_sum, grad_norm, diverged)


def schedule(s: RunSettings, n_train: int) -> tuple[int, int]:
    """(optimiser steps, warm-up steps) of a run on `n_train` examples: `warmup_steps` when set, else
    int(warmup_ratio x steps) (the official code's rule). More warm-up steps than steps is refused."""
    total = total_steps(n_train, s.batch_size, s.epochs, s.max_steps)
    if s.warmup_steps is None:
        return total, int(s.warmup_ratio * total)
    if s.warmup_steps > total:
        raise ConfigError([f"train.warmup_steps: {s.warmup_steps} warm-up steps, more than the run's {total} "
                           f"optimiser steps ({s.task}, condition {s.condition})"])
    return total, s.warmup_steps


@dataclass
class Started:
    """A run after `start`: its trainer and what the loop and the record read."""
    trainer: Trainer
    spec: object
    val: Examples
    test: Examples
    groups: list
    batches: list
    evals: set
    initial: dict
    n_rows: int | None
    cls_only: bool
    t_start: float


def start(s: RunSettings, feats: dict, *, init_weights: dict | None = None, threads: int = 1) -> Started:
    """The model (loaded, head and Re-init drawn, Mixout), the optimiser over its parameter groups, the
    schedule, the batch order, and the global RNG seeded for dropout alone (the last draw-free act
    before the first step)."""
    if not isinstance(s, RunSettings):
        raise TypeError(f"run() takes a RunSettings (RunSettings.from_dict(...)), got {type(s).__name__}")
    t_start = time.perf_counter()
    torch.set_num_threads(threads)
    spec = task_spec(s.glue_task)
    device = pick_device(s.device)
    total, warmup = schedule(s, len(feats["train"]["labels"]))
    model = build_model(s, spec, init_weights)
    if s.mixout_p:
        mixout_masks = seeds.generator("mixout", s.data_seed, device.type)
        apply_mixout(model, s.mixout_p, mixout_masks, grad=s.mixout_grad)
    model.to(device)
    initial = snapshot(model)
    feats, anchors, pad, n_rows = compact_embeddings(model, feats, s, initial)
    cls_only = s.cls_only_top_layer and cls_only_top_layer(model)
    train, val, test = (Examples(feats[k], pad_id=pad) for k in ("train", "val", "test"))
    groups = parameter_groups(model, lr=s.lr, weight_decay=s.weight_decay, prior_wd=s.prior_wd,
                              llrd_eta=s.llrd_eta, initial=anchors, prior_wd_head=s.prior_wd_head,
                              weight_decay_impl=s.weight_decay_impl)
    opt = AdamW(groups, lr=s.lr, betas=(s.adam_beta1, s.adam_beta2), eps=s.adam_eps,
                bias_correction=s.bias_correction)
    batches = batch_order(len(train), s.batch_size, total, seeds.generator("batch_order", s.data_seed))
    torch.manual_seed(seeds.stream_seed("dropout", s.data_seed))  # the global RNG is dropout's alone
    use_amp = device.type == "cuda" and s.amp
    loss_fn = torch.nn.MSELoss(reduction="sum") if spec.is_regression else torch.nn.CrossEntropyLoss(
        reduction="sum")
    trainer = Trainer(model, opt, torch.amp.GradScaler("cuda", enabled=use_amp), loss_fn, train, device,
                      use_amp, spec.is_regression, total, warmup)
    return Started(trainer, spec, val, test, groups, batches, set(eval_steps(total, s.num_evals)), initial,
                   n_rows, cls_only, t_start)


class UpdateLog:
    """The update norm per depth over the first `steps` optimiser steps (Fig. 1: BERTAdam's inflated
    early updates): `before` copies the parameters into preallocated buffers, `after` takes the
    per-tensor norms of the differences with foreach kernels, with one host sync per logged step."""

    def __init__(self, groups: list, steps: int, device):
        self.steps, self.rows = steps, []
        self.depths = list(dict.fromkeys(g["depth"] for g in groups))
        logged = [(self.depths.index(g["depth"]), p) for g in groups for p in g["params"]]
        self.params = [p for _, p in logged]
        self.group = torch.tensor([d for d, _ in logged], device=device)
        self.buf = [p.detach().clone() for p in self.params] if steps else None

    def before(self, step: int) -> None:
        if step <= self.steps:
            with torch.no_grad():
                torch._foreach_copy_(self.buf, self.params)

    def after(self, step: int) -> None:
        if step <= self.steps:
            norms = update_norms(self.params, self.buf, self.group, len(self.depths))
            self.rows.extend({"step": step, "name": d, "update_l2": v} for d, v in zip(self.depths, norms))

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows, columns=["step", "name", "update_l2"])


@dataclass
class Trace:
    """What the loop records: the curve, block drift at each evaluation, the best checkpoint, timing."""
    curve: list = field(default_factory=list)
    drift_rows: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"score": -math.inf, "step": None, "state": None, "val": None})
    evaluated: list = field(default_factory=list)
    diverged_step: int | None = None
    n_seen: int = 0
    eval_time: float = 0.0
    train_time: float = 0.0


def run(s: RunSettings, feats: dict, *, init_weights: dict | None = None, threads: int = 1,
        keep_state: bool = False) -> RunResult:
    """Fine-tune once with the resolved settings `s` on tokenised features `feats`. `keep_state`:
    return the last weights (RunResult.state_dict), e.g. to save them."""
    r = start(s, feats, init_weights=init_weights, threads=threads)
    t, tr = r.trainer, Trace()
    updates = UpdateLog(r.groups, s.update_log_steps, t.device)
    sq_norms = start_sq_norms(r.initial)

    def evaluate_and_keep(step: int, row: dict) -> None:
        t0 = time.perf_counter()
        scores, _ = evaluate(t.model, r.val, r.spec, t.device, s.eval_batch_tokens)
        tr.eval_time += time.perf_counter() - t0
        tr.evaluated.append(step)
        row.update({f"val_{k}": v for k, v in scores.items()})
        if tr.best["state"] is None or _improves(scores[s.selection_metric], tr.best["score"]):
            tr.best.update(score=scores[s.selection_metric], step=step, val=scores,
                           state={k: v.detach().clone() for k, v in t.model.state_dict().items()})
        record_drift(step)

    def record_drift(step: int) -> None:
        blocks = block_drift(tensor_drift(r.initial, t.model, sq_norms), t.model)
        tr.drift_rows.extend({"step": step, "level": "block", "name": b.name, "l2": b.l2, "rel": b.rel}
                             for b in blocks.itertuples())

    record_drift(0)
    t_train = time.perf_counter()
    desc = f"{s.task}/{s.condition}/seed{s.seed}"
    progress = Progress(t.total, desc)
    for step, batch_idx in enumerate(r.batches, start=1):
        updates.before(step)
        out = train_step(s, t, step, batch_idx)
        row = {"step": step, "lr": out.lr, "train_loss": out.train_loss, "grad_norm": out.grad_norm}
        if out.diverged:
            tr.diverged_step = step
            log.warning("%s diverged at step %d of %d (training loss %s, gradient norm %s): training stopped, "
                        "the weights of step %d are evaluated as the last checkpoint",
                        desc, step, t.total, out.train_loss, out.grad_norm, step - 1)
        else:
            updates.after(step)
            tr.n_seen += len(batch_idx)
        if step in r.evals or out.diverged:
            evaluate_and_keep(step, row)
        tr.curve.append(row)
        if out.diverged:
            break
        progress.update(step, out.train_loss)
    progress.close()
    tr.train_time = time.perf_counter() - t_train - tr.eval_time
    return finish(s, r, tr, updates, sq_norms, keep_state=keep_state, threads=threads)


def finish(s: RunSettings, r: Started, tr: Trace, updates: UpdateLog, sq_norms, *, keep_state: bool,
           threads: int) -> RunResult:
    """Test metrics of the last and of the best checkpoint, the drift table and the run's record."""
    t, spec, test = r.trainer, r.spec, r.test
    last_step = tr.curve[-1]["step"]
    last_val = {k[4:]: v for k, v in tr.curve[-1].items() if k.startswith("val_")}
    t0 = time.perf_counter()
    test_last, pred_last = evaluate(t.model, test, spec, t.device, s.eval_batch_tokens)
    final_tensors = tensor_drift(r.initial, t.model, sq_norms)
    last_state = dense_state_dict(t.model) if keep_state else None
    best = tr.best
    if best["step"] == last_step:  # the best checkpoint is the last one: same weights, same predictions
        test_best, pred_best = test_last, pred_last
    else:
        t.model.load_state_dict(best["state"])
        test_best, pred_best = evaluate(t.model, test, spec, t.device, s.eval_batch_tokens)
    eval_time = tr.eval_time + time.perf_counter() - t0
    n_eval = len(tr.evaluated) * len(r.val) + (1 if best["step"] == last_step else 2) * len(test)
    train_time = tr.train_time

    drift = pd.DataFrame(tr.drift_rows)
    drift = pd.concat([drift, final_tensors[["name", "l2", "rel"]].assign(step=last_step, level="tensor")],
                      ignore_index=True)[["step", "level", "name", "l2", "rel"]]
    record = {
        "task": s.task, "glue_task": spec.name, "condition": s.condition, "seed": s.seed,
        "init_seed": s.init_seed, "data_seed": s.data_seed,
        "metric": s.report_metric, "selection_metric": s.selection_metric,
        "total_steps": t.total, "warmup_steps": t.warmup, "eval_steps": tr.evaluated,
        "diverged": tr.diverged_step is not None, "diverged_step": tr.diverged_step,
        "n_train": len(t.train), "n_val": len(r.val), "n_test": len(test),
        "best_step": best["step"],
        "val_best": best["val"], "val_last": last_val,
        "test_best": test_best, "test_last": test_last,
        "spread_best": prediction_spread(spec, pred_best), "spread_last": prediction_spread(spec, pred_last),
        "majority_test": majority_baseline(spec, test.labels.tolist()),
        "label_std_test": float(np.std(test.labels.numpy().astype(np.float64))),
        "device": t.device.type, "threads": threads, "embedding_rows": r.n_rows,
        "cls_only_top_layer": r.cls_only,
        "timing": {"wall_s": time.perf_counter() - r.t_start, "train_s": train_time, "eval_s": eval_time,
                   "train_examples_per_s": tr.n_seen / train_time if train_time > 0 else None,
                   "eval_examples_per_s": n_eval / eval_time if eval_time > 0 else None},
    }
    return RunResult(record, pd.DataFrame(tr.curve), drift, state_dict=last_state, updates=updates.frame())


def save_checkpoint(state_dict: dict, path: Path) -> None:
    from safetensors.torch import save_file

    from .io import atomic_save

    atomic_save(path, lambda tmp: save_file({k: v.contiguous() for k, v in state_dict.items()}, tmp))
