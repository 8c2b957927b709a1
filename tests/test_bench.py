"""bench/ measures the engine's own training step (pipeline.train.train_step), never a copy of it."""
from __future__ import annotations

import sys
from pathlib import Path

import torch

import pipeline.train as train_mod

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import profile_step  # noqa: E402


def _spy(monkeypatch):
    calls, real = [], train_mod.train_step

    def spy(*a, **k):
        calls.append(a)
        return real(*a, **k)

    monkeypatch.setattr(train_mod, "train_step", spy)
    return calls


def test_profile_step_times_the_engine_step(monkeypatch, settings, tiny_features):
    """bench/profile_step.py's measured step is pipeline.train.train_step on a run begun by
    pipeline.train.start; its phase labels change nothing of the computation and are removed after."""
    s = settings("rte", max_steps=2, update_log_steps=2)
    feats = tiny_features("rte")
    plain = train_mod.start(s, feats)
    want = [train_mod.train_step(s, plain.trainer, k, b) for k, b in enumerate(plain.batches, start=1)]

    calls = _spy(monkeypatch)
    started = train_mod.start(s, feats)
    step = profile_step.measured_step(s, started, log_steps=2)
    saved = (torch.Tensor.backward, torch.nn.utils.clip_grad_norm_)
    with profile_step.phase_labels(started.trainer):
        got = [step(k, b, True) for k, b in enumerate(started.batches, start=1)]
    assert [c[:2] for c in calls] == [(s, started.trainer)] * 2  # the engine's step, on the engine's trainer
    assert [c[2:] for c in calls] == list(zip([1, 2], started.batches))
    assert got == want  # the same losses, gradient norms and learning rates
    for (n, p), q in zip(plain.trainer.model.named_parameters(), started.trainer.model.parameters()):
        assert torch.equal(p, q), n
    assert (torch.Tensor.backward, torch.nn.utils.clip_grad_norm_) == saved
    assert "batch" not in vars(started.trainer.train) and not started.trainer.model._forward_hooks


def test_run_steps_through_the_same_function(monkeypatch, settings, tiny_features):
    """run() calls pipeline.train.train_step once per optimiser step: the function bench/ times."""
    calls = _spy(monkeypatch)
    s = settings("rte", max_steps=2, num_evals=1)
    result = train_mod.run(s, tiny_features("rte"))
    assert len(calls) == result.record["total_steps"] == 2
    assert all(c[0] is s for c in calls)
