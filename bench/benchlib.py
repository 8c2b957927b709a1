"""Shared helpers of the benchmarks in bench/: settings from the study's configuration, the
engine's own features and batch order, timed runs of our engine and of Hugging Face Trainer on
identical work, FLOP counting from the model's shapes, and the measured matmul peak.

Everything here calls the engine (pipeline.*) as a study job does; nothing in pipeline/ is changed.
"""
from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent          # the repository
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
PARAMS = ROOT / "params.yaml"


def default_glue_dir() -> None:
    """GLUE_DIR for offline runs: the environment's, else ../shared/data/glue next to the repository."""
    if not os.environ.get("GLUE_DIR"):
        cand = ROOT.parent / "shared" / "data" / "glue"
        if cand.is_dir():
            os.environ["GLUE_DIR"] = str(cand)


default_glue_dir()


def median(xs):
    return statistics.median(xs) if xs else float("nan")


# ---- settings and data ----------------------------------------------------------------------

def settings(task: str, config_paths=(PARAMS,), condition: str = "debiased", seed: int = 0):
    """A run's RunSettings exactly as `python -m pipeline finetune --config ...` resolves them."""
    from pipeline.config import load_config, resolve_settings
    from pipeline.settings import RunSettings

    return RunSettings.from_dict(resolve_settings(load_config([str(p) for p in config_paths]), task, condition, seed))


def features(s, config_paths=(PARAMS,)) -> dict:
    """Splits and tokenised features built in-process, exactly as the `finetune` command does without
    --features (the engine's own function, pipeline.prepare.build_run_features)."""
    from pipeline.config import load_config
    from pipeline.prepare import build_run_features

    return build_run_features(load_config([str(p) for p in config_paths]), s.task, s.model, s.max_seq_length)


def subset_features(f: dict, n: int) -> dict:
    """The first n examples of one split's features (offsets re-based)."""
    from pipeline.features import head

    return head(f, n)


def train_batches(s, n_train: int, steps: int) -> list[list[int]]:
    """The engine's optimiser batches (example indices) of the first `steps` steps."""
    from pipeline import seeds
    from pipeline.train import batch_order

    return batch_order(n_train, s.batch_size, steps, seeds.generator("batch_order", s.data_seed))


def full_run_steps(s, n_train: int) -> tuple[int, int]:
    """(optimiser steps, evaluations) of a full run with settings s."""
    from pipeline.train import eval_steps, total_steps

    total = total_steps(n_train, s.batch_size, s.epochs, s.max_steps)
    return total, len(eval_steps(total, s.num_evals))


def token_counts(batches, lengths, budget: int) -> tuple[int, int]:
    """(non-padding tokens, padded tokens) the engine processes for these optimiser batches."""
    from pipeline.features import micro_batches

    real = padded = 0
    for b in batches:
        for mb in micro_batches(b, lengths, budget):
            w = max(int(lengths[i]) for i in mb)
            real += sum(int(lengths[i]) for i in mb)
            padded += w * len(mb)
    return real, padded


# ---- FLOPs -------------------------------------------------------------------------------------

def model_shapes(model) -> dict:
    """Matmul parameter counts from the model itself: encoder Linear weights (applied per token) and
    pooler + classifier Linear weights (applied once per sequence)."""
    from torch import nn

    from pipeline.model import base_model, encoder_layers

    enc = sum(m.weight.numel() for layer in encoder_layers(model) for m in layer.modules()
              if isinstance(m, nn.Linear))
    enc_ids = {id(m) for layer in encoder_layers(model) for m in layer.modules()}
    per_seq = sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Linear) and id(m) not in enc_ids)
    cfg = model.config
    emb = sum(p.numel() for p in base_model(model).embeddings.parameters())
    return {"n_layers": cfg.num_hidden_layers, "hidden": cfg.hidden_size, "enc_linear": enc,
            "per_seq_linear": per_seq, "embedding": emb,
            "total": sum(p.numel() for p in model.parameters())}


def train_flops(lengths, shapes: dict) -> float:
    """Training FLOPs (forward + backward = 3 x forward) of sequences with these non-padding lengths:
    per sequence of n tokens, forward = 2*P_enc*n (every encoder Linear, per token)
    + 4*L*d*n^2 (attention scores Q.K^T and the weighted sum A.V, per layer) + 2*P_seq (pooler and
    classifier on [CLS]); embeddings, LayerNorm, softmax, GELU and the loss are not counted."""
    P, L, d, Ps = shapes["enc_linear"], shapes["n_layers"], shapes["hidden"], shapes["per_seq_linear"]
    return float(sum(3 * (2 * P * n + 4 * L * d * n * n + 2 * Ps) for n in (int(x) for x in lengths)))


def padded_train_flops(batches, lengths, budget: int, shapes: dict) -> float:
    """The same count over what the engine actually computes: each micro-batch padded to its widest."""
    from pipeline.features import micro_batches

    total = 0.0
    for b in batches:
        for mb in micro_batches(b, lengths, budget):
            w = max(int(lengths[i]) for i in mb)
            total += train_flops([w] * len(mb), shapes)
    return total


def matmul_peak(n: int = 2048, repeats: int = 7, threads: int = 1) -> dict:
    """fp32 GFLOP/s of a large square torch.mm at this thread count (median of repeats), and of the
    model's own largest Linear shape for reference."""
    import torch

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(n, n, generator=g), torch.randn(n, n, generator=g)
    torch.mm(a, b)
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        ts.append(time.perf_counter() - t0)
    peak = 2 * n ** 3 / median(ts) / 1e9
    # tokens of one default optimiser batch (16 x 64) through the FFN up-projection 384 -> 1536
    x, w = torch.randn(1024, 384, generator=g), torch.randn(384, 1536, generator=g)
    torch.mm(x, w)
    ts2 = []
    for _ in range(repeats * 5):
        t0 = time.perf_counter()
        torch.mm(x, w)
        ts2.append(time.perf_counter() - t0)
    return {"n": n, "gflops": peak, "all_gflops": [2 * n ** 3 / t / 1e9 for t in ts],
            "ffn_gflops": 2 * 1024 * 384 * 1536 / median(ts2) / 1e9}


# ---- our engine --------------------------------------------------------------------------------

def ours_train(s, feats: dict, steps: int, threads: int = 1) -> dict:
    """Our engine's run() for `steps` optimiser steps (the first steps of the real batch order), one
    evaluation at the end on the validation half, a token test split (not timed as training).
    Returns the engine's own timing record and the number of word-embedding rows it trained
    (`embedding_rows`, None when the whole matrix was trained)."""
    from pipeline.train import run

    s2 = s.replace(max_steps=steps, num_evals=1)
    f2 = {"train": feats["train"], "val": feats["val"], "test": subset_features(feats["test"], 16)}
    rec = run(s2, f2, threads=threads).record
    return dict(rec["timing"], embedding_rows=rec.get("embedding_rows"))


def ours_eval(s, feats: dict, repeats: int = 3, threads: int = 1) -> dict:
    """Evaluation examples/s of the engine's predict() on the validation half (median of repeats)."""
    import torch

    from pipeline.features import Examples
    from pipeline.metrics import compute_metrics
    from pipeline.tasks import task_spec
    from pipeline.train import build_model, predict

    torch.set_num_threads(threads)
    spec = task_spec(s.glue_task)
    model = build_model(s, spec)
    val = Examples(feats["val"])
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        pred = predict(model, val, torch.device("cpu"), s.eval_batch_tokens)
        compute_metrics(spec, pred, val.labels.numpy())
        ts.append(time.perf_counter() - t0)
    return {"eval_s": median(ts), "eval_ex_s": len(val) / median(ts), "all_s": ts}


def unsorted_eval(s, feats: dict, batch_size: int, repeats: int = 3, threads: int = 1) -> dict:
    """Evaluation without length-aware batching: batches of `batch_size` in the split's order, each
    padded to its own longest sequence (the baseline the engine's predict() improves on)."""
    import torch

    from pipeline.features import Examples
    from pipeline.tasks import task_spec
    from pipeline.train import build_model

    torch.set_num_threads(threads)
    spec = task_spec(s.glue_task)
    model = build_model(s, spec)
    model.eval()
    val = Examples(feats["val"])
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        with torch.no_grad():
            for i in range(0, len(val), batch_size):
                b = {k: v for k, v in val.batch(list(range(i, min(i + batch_size, len(val))))).items()
                     if k != "labels"}
                model(**b).logits.argmax(-1).tolist()
        ts.append(time.perf_counter() - t0)
    return {"eval_s": median(ts), "eval_ex_s": len(val) / median(ts), "all_s": ts}


def full_run_subprocess(task: str, config_paths, out_dir: Path, threads: int = 1, seed: int = 0) -> dict:
    """`python -m pipeline finetune --config ... --task ... --out ...` as a fresh process (splits and
    features built in-process); wall time from spawn to exit, and the run's own timing record."""
    cmd = [PY, "-m", "pipeline", "finetune", "--config", *[str(p) for p in config_paths], "--task", task,
           "--condition", "debiased", "--seed", str(seed), "--threads", str(threads), "--out", str(out_dir)]
    env = dict(os.environ, PIPELINE_LOG="WARNING")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"full run failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-3000:]}")
    rec = json.loads((Path(out_dir) / "record.json").read_text())
    return {"wall_s": wall, "timing": rec["timing"], "total_steps": rec["total_steps"],
            "n_evals": len(rec["eval_steps"]), "cmd": " ".join(cmd[1:])}


# ---- Hugging Face Trainer ------------------------------------------------------------------------

class CountingCollator:
    """Wraps a data collator and counts the examples, non-padding and padded tokens it emits."""

    def __init__(self, inner):
        self.inner = inner
        self.reset()

    def reset(self):
        self.n = self.real = self.padded = 0
        self.lengths = []  # non-padding length of every example, for the FLOP count

    def __call__(self, feats):
        b = self.inner(feats)
        m = b["attention_mask"]
        self.n += int(m.shape[0])
        self.real += int(m.sum())
        self.padded += int(m.numel())
        self.lengths += m.sum(1).tolist()
        return b


def hf_dataset(f: dict, pad_to: int | None = None) -> list[dict]:
    """The engine's tokenised features as the list of dicts a Trainer takes; pad_to pads every
    example to that length at tokenisation time (run_glue's default, padding='max_length')."""
    out = []
    ids, types, off, labels = f["ids"].tolist(), f["types"].tolist(), f["offsets"].tolist(), f["labels"].tolist()
    for i in range(len(labels)):
        a, e = off[i], off[i + 1]
        x, t, m = ids[a:e], types[a:e], [1] * (e - a)
        if pad_to:
            k = pad_to - len(x)
            x, t, m = x + [0] * k, t + [0] * k, m + [0] * k
        out.append({"input_ids": x, "token_type_ids": t, "attention_mask": m, "labels": labels[i]})
    return out


def hf_train_eval(s, feats: dict, steps: int, mode: str, fixed_batches=None, threads: int = 1,
                  eval_repeats: int = 1) -> dict:
    """Hugging Face Trainer on the same model (same weights, head init and attention implementation),
    data, batch size, optimiser settings and thread count.
    mode: 'dynamic' (DataCollatorWithPadding; batches = ours when fixed_batches is given),
    'group_by_length' (train_sampling_strategy='group_by_length', Trainer's own length grouping),
    'pad_max' (run_glue's default: every example padded to max_seq_length, default_data_collator).
    Training time: on_train_begin to the end of the last step (callback); evaluation: trainer.evaluate
    on the validation half, with the task's metrics."""
    import numpy as np
    import torch
    from torch.utils.data import Sampler
    from transformers import (DataCollatorWithPadding, PrinterCallback, Trainer, TrainerCallback,
                              TrainingArguments, default_data_collator)
    from transformers.utils import logging as hf_logging

    from pipeline.metrics import compute_metrics
    from pipeline.model import load_tokenizer
    from pipeline.tasks import task_spec
    from pipeline.train import build_model

    hf_logging.set_verbosity_error()
    torch.set_num_threads(threads)
    spec = task_spec(s.glue_task)
    tok = load_tokenizer(s.model)
    pad_to = s.max_seq_length if mode == "pad_max" else None
    train_ds, val_ds = hf_dataset(feats["train"], pad_to), hf_dataset(feats["val"], pad_to)
    inner = default_data_collator if mode == "pad_max" else DataCollatorWithPadding(tok)
    collator = CountingCollator(inner)

    class ListSampler(Sampler):
        def __init__(self, order):
            self.order = order

        def __iter__(self):
            return iter(self.order)

        def __len__(self):
            return len(self.order)

    class FixedOrderTrainer(Trainer):
        fixed = None

        def _get_train_sampler(self, train_dataset=None):
            if self.fixed is not None:
                return ListSampler(self.fixed)
            return super()._get_train_sampler(train_dataset)

    class Clock(TrainerCallback):
        def __init__(self):
            self.t0 = self.t1 = None
            self.threads = None

        def on_train_begin(self, args, state, control, **kw):
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.t1 = time.perf_counter()
            self.threads = torch.get_num_threads()

    def metrics(ev):
        logits = ev.predictions
        pred = logits[:, 0] if logits.shape[1] == 1 else logits.argmax(-1)
        return compute_metrics(spec, np.asarray(pred), np.asarray(ev.label_ids))

    tmp = tempfile.mkdtemp(prefix="bench-hf-")
    args = TrainingArguments(
        output_dir=tmp, per_device_train_batch_size=s.batch_size, per_device_eval_batch_size=s.batch_size,
        max_steps=steps, learning_rate=s.lr, lr_scheduler_type="linear", warmup_steps=float(s.warmup_ratio),
        weight_decay=s.weight_decay, max_grad_norm=s.max_grad_norm, adam_beta1=s.adam_beta1,
        adam_beta2=s.adam_beta2, adam_epsilon=s.adam_eps, seed=s.data_seed, use_cpu=True,
        report_to="none", save_strategy="no", eval_strategy="no", logging_strategy="no", disable_tqdm=True,
        dataloader_num_workers=0, dataloader_pin_memory=False,
        train_sampling_strategy="group_by_length" if mode == "group_by_length" else "random")
    model = build_model(s, spec)  # the same initial weights as ours (head from the engine's stream)
    clock = Clock()
    trainer = FixedOrderTrainer(model=model, args=args, train_dataset=train_ds, data_collator=collator,
                                processing_class=tok, compute_metrics=metrics, callbacks=[clock])
    trainer.remove_callback(PrinterCallback)
    if fixed_batches is not None and mode != "group_by_length":
        trainer.fixed = [i for b in fixed_batches for i in b]
    torch.set_num_threads(threads)
    collator.reset()
    trainer.train()
    train_s = clock.t1 - clock.t0
    n, real, padded, lengths = collator.n, collator.real, collator.padded, list(collator.lengths)
    ev_ts = []
    for _ in range(eval_repeats):
        collator.reset()
        t0 = time.perf_counter()
        trainer.evaluate(eval_dataset=val_ds)
        ev_ts.append(time.perf_counter() - t0)
    return {"mode": mode, "train_s": train_s, "n_train": n, "train_ex_s": n / train_s,
            "real_tokens": real, "padded_tokens": padded, "real_tok_s": real / train_s, "lengths": lengths,
            "eval_s": median(ev_ts), "eval_ex_s": len(val_ds) / median(ev_ts), "threads": clock.threads}


# ---- table printing ------------------------------------------------------------------------------

def table(rows: list[list], header: list[str]) -> str:
    cols = list(zip(*([header] + [[str(c) for c in r] for r in rows])))
    widths = [max(len(c) for c in col) for col in cols]
    line = lambda r: "  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    return "\n".join([line(header), "  ".join("-" * w for w in widths)] + [line(r) for r in rows])


def fmt(x, nd=1):
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    return f"{x:.{nd}f}"
