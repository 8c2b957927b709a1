"""The training loop: pairing of conditions by seed, micro-batching, drift, the evaluation schedule,
checkpoint selection, determinism, and a complete tiny run of every mirrored task."""
from __future__ import annotations

import json
import math
import time

import numpy as np
import pandas as pd
import pytest
import torch

import pipeline.train as train_mod
from pipeline import seeds
from pipeline.drift import layer_drift, snapshot, start_sq_norms, tensor_drift
from pipeline.features import Examples, micro_batches
from pipeline.io import atomic_write_csv, atomic_write_json
from pipeline.model import block_of
from pipeline.optim import linear_schedule
from pipeline.tasks import task_spec
from pipeline.train import batch_order, build_model, eval_steps, evaluate, run, total_steps

METRIC_RANGE = {"accuracy": (0, 1), "f1": (0, 1), "mcc": (-1, 1), "pearson": (-1, 1), "spearman": (-1, 1)}


@pytest.fixture(scope="module")
def runs(settings, tiny_features):
    """run(task, **overrides) -> RunResult, each distinct run computed once per module (keep_state on)."""
    cache = {}

    def get(task="rte", val_source="dev_half", **over):
        s = settings(task, **over)
        key = (val_source, s)  # the same settings (a frozen RunSettings): the same run
        if key not in cache:
            feats = tiny_features(task, val_source=val_source)
            t0 = time.perf_counter()
            result = run(s, feats, keep_state=True)
            cache[key] = (s, result, time.perf_counter() - t0)
        return cache[key]

    return get


def _head(model):
    return {k: v.detach().clone() for k, v in model.classifier.state_dict().items()}


# ---- pairing ----------------------------------------------------------------------------------

def test_batch_order_is_a_function_of_the_data_seed(settings):
    n, bs, total = 30, 8, 13
    a = settings("rte", seed=3)
    b = settings("rte", seed=3, bias_correction=False)
    c = settings("rte", seed=3, reinit_layers=2, reinit_pooler=True)
    orders = []
    for s in (a, b, c):
        torch.manual_seed(len(orders))  # the global RNG plays no part
        orders.append(batch_order(n, bs, total, seeds.generator("batch_order", s.data_seed)))
    assert orders[0] == orders[1] == orders[2]
    changed = batch_order(n, bs, total, seeds.generator("batch_order", settings("rte", seed=3, data_seed=4).data_seed))
    assert changed != orders[0]
    init_changed = settings("rte", seed=3, init_seed=99)
    assert batch_order(n, bs, total, seeds.generator("batch_order", init_changed.data_seed)) == orders[0]


def test_batch_order_epochs():
    n, bs = 30, 8
    order = batch_order(n, bs, 13, seeds.generator("batch_order", 0))
    assert len(order) == 13
    per_epoch = math.ceil(n / bs)
    assert [len(b) for b in order[:per_epoch]] == [8, 8, 8, 6]  # the last batch is smaller, none dropped
    for e in range(3):  # each full epoch is a permutation of the training set
        epoch = [i for b in order[e * per_epoch:(e + 1) * per_epoch] for i in b]
        assert sorted(epoch) == list(range(n))
    first = [i for b in order[:per_epoch] for i in b]
    second = [i for b in order[per_epoch:2 * per_epoch] for i in b]
    assert first != second  # a fresh shuffle each epoch


def test_head_paired_across_conditions(settings):
    spec = task_spec("rte")
    base = settings("rte", seed=3)
    torch.manual_seed(0)
    m_base = build_model(base, spec)
    torch.manual_seed(1)  # whatever the global RNG, the head comes from its own stream
    m_reinit = build_model(settings("rte", seed=3, reinit_layers=2, reinit_pooler=True), spec)
    m_bertadam = build_model(settings("rte", seed=3, bias_correction=False), spec)
    m_data = build_model(settings("rte", seed=3, data_seed=11), spec)
    m_init = build_model(settings("rte", seed=4), spec)
    h = _head(m_base)
    for other in (m_reinit, m_bertadam, m_data):
        o = _head(other)
        assert all(torch.equal(h[k], o[k]) for k in h)
    assert not torch.equal(h["weight"], _head(m_init)["weight"])
    # the conditions differ only in what they change: Re-init touched the top 2 blocks and the pooler
    sb, sr = snapshot(m_base), snapshot(m_reinit)
    for name in sb:
        touched = name.startswith(("bert.encoder.layer.4.", "bert.encoder.layer.5.", "bert.pooler."))
        if touched and name.endswith("weight") and "LayerNorm" not in name:
            assert not torch.equal(sb[name], sr[name]), name
        elif not touched:
            assert torch.equal(sb[name], sr[name]), name
    assert all(torch.equal(sb[k], v) for k, v in snapshot(m_bertadam).items())


def test_paired_runs_share_the_first_step(runs):
    """Same seed, two conditions: identical head, batch and dropout masks, so step 1's loss and
    gradient norm (computed before the optimisers act) are bit-identical; a new data_seed changes them."""
    _, a, _ = runs("rte", bias_correction=True)
    _, b, _ = runs("rte", bias_correction=False)
    _, c, _ = runs("rte", data_seed=5)
    first = ["train_loss", "grad_norm"]
    assert a.curve.loc[0, first].tolist() == b.curve.loc[0, first].tolist()
    assert a.curve.loc[0, "train_loss"] != c.curve.loc[0, "train_loss"]
    assert not a.curve["train_loss"].equals(b.curve["train_loss"])  # the optimisers then differ


# ---- micro-batching ----------------------------------------------------------------------------

def _grads(model, batches, n_total, spec):
    """Accumulated gradients of sum(per-example loss) / divisor over `batches`; `n_total` is the divisor
    (the optimiser batch size) or, per batch, a list of divisors."""
    model.zero_grad(set_to_none=True)
    loss_fn = torch.nn.MSELoss(reduction="sum") if spec.is_regression else torch.nn.CrossEntropyLoss(reduction="sum")
    divisors = n_total if isinstance(n_total, list) else [n_total] * len(batches)
    total = 0.0
    for b, div in zip(batches, divisors):
        b = dict(b)
        labels = b.pop("labels")
        logits = model(**b).logits
        loss = (loss_fn(logits[:, 0], labels) if spec.is_regression else loss_fn(logits, labels)) / div
        loss.backward()
        total += float(loss.detach())
    return total, {n: p.grad.detach().double().clone() for n, p in model.named_parameters()}


def _pad_to(batch, width):
    out = {}
    for k, v in batch.items():
        if k == "labels":
            out[k] = v
        else:
            out[k] = torch.nn.functional.pad(v, (0, width - v.shape[1]), value=0)
    return out


def _rel(g1, g2):
    num = sum(float((g1[k] - g2[k]).pow(2).sum()) for k in g1) ** 0.5
    den = sum(float(g1[k].pow(2).sum()) for k in g1) ** 0.5
    return num / den


@pytest.mark.parametrize("task,dropout_off", [("rte", "dropout0"), ("sts-b", "eval")])
def test_micro_batch_gradient_equals_whole_batch(settings, tiny_features, task, dropout_off):
    spec = task_spec(task)
    s = settings(task, dropout=0.0) if dropout_off == "dropout0" else settings(task)
    model = build_model(s, spec)
    model.train() if dropout_off == "dropout0" else model.eval()
    ex = Examples(tiny_features(task)["train"])
    idx = list(range(16))
    budget = 3 * int(ex.lengths[idx].max())
    mbs = micro_batches(idx, ex.lengths, budget)
    assert len(mbs) >= 3
    assert sorted(i for mb in mbs for i in mb) == idx  # a partition of the optimiser batch
    for mb in mbs:
        widths = [int(ex.lengths[i]) for i in mb]
        assert max(widths) * len(mb) <= budget or len(mb) == 1
    lengths_in_order = [int(ex.lengths[i]) for mb in mbs for i in mb]
    assert lengths_in_order == sorted(lengths_in_order, reverse=True)  # length-sorted

    whole_loss, whole = _grads(model, [ex.batch(idx)], len(idx), spec)
    micro_loss, micro = _grads(model, [ex.batch(mb) for mb in mbs], len(idx), spec)
    padded_loss, padded = _grads(model, [_pad_to(ex.batch(idx), s.max_seq_length)], len(idx), spec)
    assert ex.batch(idx)["input_ids"].shape[1] == int(ex.lengths[idx].max())  # padded to its own longest
    assert _rel(whole, micro) < 1e-5
    assert _rel(whole, padded) < 1e-5
    assert micro_loss == pytest.approx(whole_loss, rel=1e-5)
    assert padded_loss == pytest.approx(whole_loss, rel=1e-5)
    # the mean over each micro-batch instead of over the optimiser batch would be a different gradient
    _, wrong = _grads(model, [ex.batch(mb) for mb in mbs], [len(mb) for mb in mbs], spec)
    assert _rel(whole, wrong) > 1e-2


def test_micro_batch_budget_zero_is_one_batch():
    lengths = torch.tensor([5, 9, 3, 7])
    assert micro_batches([2, 0, 3], lengths, 0) == [[2, 0, 3]]
    assert micro_batches([0, 1, 2, 3], lengths, 18) == [[1, 3], [0, 2]]
    assert micro_batches([0, 1], lengths, 4) == [[1], [0]]  # an example longer than the budget: alone


def test_micro_batched_run_equals_whole_batch_run(runs):
    """In the engine's own loop (dropout 0): the same curve with and without micro-batching."""
    _, whole, _ = runs("rte", dropout=0.0, micro_batch_tokens=0)
    _, micro, _ = runs("rte", dropout=0.0, micro_batch_tokens=64)
    for col in ("train_loss", "grad_norm"):
        np.testing.assert_allclose(micro.curve[col].to_numpy(), whole.curve[col].to_numpy(), rtol=1e-4)
    assert micro.curve.loc[0, "grad_norm"] == pytest.approx(whole.curve.loc[0, "grad_norm"], rel=1e-5)


def assert_same_curves(a, b):
    """Two runs of the same computation: training loss, gradient norm, validation metrics and update
    norms at every step agree to float rounding."""
    for col in ("train_loss", "grad_norm"):
        np.testing.assert_allclose(a.curve[col].to_numpy(), b.curve[col].to_numpy(), rtol=1e-4)
    val = [c for c in b.curve.columns if c.startswith("val_")]
    np.testing.assert_allclose(a.curve[val].to_numpy(dtype=float), b.curve[val].to_numpy(dtype=float),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.updates["update_l2"], b.updates["update_l2"], rtol=1e-4)


@pytest.mark.parametrize("over", [
    {"dropout": 0.0},
    {"dropout": 0.0, "prior_wd": 0.5, "llrd_eta": 0.8, "bias_correction": False},
    {"dropout": None, "reinit_layers": 1, "reinit_pooler": True},  # the checkpoint's dropout: same masks
    {"mixout_p": 0.2, "num_evals": 4},
])
def test_compact_embeddings_run_equals_dense_run(runs, over):
    """Training only the word-embedding rows the run reads is the same run: curve, update norms,
    drift, predictions and the saved (dense) weights agree to float rounding (the clipping norm sums
    the embedding's gradient over a tensor of another size). With dropout on, equality also shows
    that compaction draws nothing from the random streams."""
    kw = dict(micro_batch_tokens=64, update_log_steps=3, epochs=2, **over)
    _, dense, _ = runs("rte", compact_embeddings=False, **kw)
    _, compact, _ = runs("rte", compact_embeddings=True, **kw)
    assert dense.record["embedding_rows"] is None
    rows = compact.record["embedding_rows"]
    vocab = dense.state_dict["bert.embeddings.word_embeddings.weight"].shape[0]
    assert 100 < rows < vocab // 4  # a tiny split reads a small part of the vocabulary
    assert_same_curves(compact, dense)
    assert (compact.drift[["step", "level", "name"]] == dense.drift[["step", "level", "name"]]).all().all()
    np.testing.assert_allclose(compact.drift["l2"], dense.drift["l2"], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(compact.drift["rel"], dense.drift["rel"], rtol=1e-4, atol=1e-12)
    assert compact.record["test_best"] == pytest.approx(dense.record["test_best"], rel=1e-4, abs=1e-6)
    assert compact.state_dict.keys() == dense.state_dict.keys()
    for k, v in dense.state_dict.items():
        torch.testing.assert_close(compact.state_dict[k], v, rtol=1e-4, atol=1e-6, msg=k)
    emb_drift = dense.drift.query("level == 'tensor' and name == 'bert.embeddings.word_embeddings.weight'")
    assert float(emb_drift["l2"].iloc[0]) > 0  # the embeddings did train
    assert compact.record["best_step"] == dense.record["best_step"]


@pytest.mark.parametrize("over", [
    {"dropout": None},  # the checkpoint's dropout: equality shows the same masks are drawn
    {"dropout": None, "mixout_p": 0.2, "reinit_layers": 1, "reinit_pooler": True, "bias_correction": False},
])
def test_cls_only_top_layer_run_equals_whole_layer_run(runs, over):
    """Computing the top layer at [CLS] only is the same run, dropout on: curve, update norms, drift,
    predictions and weights agree to float rounding."""
    kw = dict(micro_batch_tokens=64, update_log_steps=3, epochs=2, **over)
    _, whole, _ = runs("rte", cls_only_top_layer=False, **kw)
    _, cls, _ = runs("rte", cls_only_top_layer=True, **kw)
    assert cls.record["cls_only_top_layer"] is True and whole.record["cls_only_top_layer"] is False
    assert_same_curves(cls, whole)
    # Key biases get a zero gradient in exact arithmetic (softmax ignores a shift of every score), so
    # what moves them is rounding noise, which Adam rescales to ~1e-6: compared loosely, the rest tightly.
    noise = whole.drift["name"].str.endswith("attention.self.key.bias").to_numpy()
    assert (cls.drift["name"] == whole.drift["name"]).all()
    np.testing.assert_allclose(cls.drift["l2"][~noise], whole.drift["l2"][~noise], rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(cls.drift["l2"][noise], whole.drift["l2"][noise], atol=1e-5)
    assert cls.record["test_best"] == pytest.approx(whole.record["test_best"], rel=1e-4, abs=1e-6)
    assert cls.record["best_step"] == whole.record["best_step"]
    # Adam rescales each element's gradient, so an element whose gradient is near zero moves by a rounding
    # difference of up to a small fraction of one step's size (lr 1e-4): atol 1e-5.
    for k, v in whole.state_dict.items():
        torch.testing.assert_close(cls.state_dict[k], v, rtol=1e-4, atol=1e-5, msg=k)


@pytest.mark.parametrize("train_mode", [False, True])
def test_cls_only_top_layer_module(train_mode):
    """On a padded batch: the same logits, the same random draws and the same gradients as the whole
    layer (key biases have a zero gradient in exact arithmetic: softmax ignores a shift of all scores)."""
    import copy

    from transformers import BertConfig, BertForSequenceClassification

    from pipeline.model import cls_only_top_layer

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=3, num_attention_heads=4,
                     intermediate_size=48, max_position_embeddings=32, num_labels=3, attn_implementation="eager")
    whole = BertForSequenceClassification(cfg)
    cls = copy.deepcopy(whole)
    assert cls_only_top_layer(cls)
    ids = torch.randint(1, 60, (5, 12))
    mask = torch.ones(5, 12, dtype=torch.long)
    mask[1, 7:], mask[3, 4:] = 0, 0
    ids[mask == 0] = 0
    y = torch.tensor([0, 2, 1, 1, 0])
    outs = []
    for m in (whole, cls):
        m.train(train_mode)
        torch.manual_seed(7)
        out = m(input_ids=ids, attention_mask=mask, labels=y)
        out.loss.backward()
        outs.append((out.logits.detach(), torch.get_rng_state()))
    torch.testing.assert_close(outs[1][0], outs[0][0], rtol=1e-5, atol=1e-6)
    assert torch.equal(outs[1][1], outs[0][1])  # the same number of draws
    grads = dict(whole.named_parameters())
    for name, p in cls.named_parameters():
        if name.endswith("attention.self.key.bias"):
            assert float(p.grad.abs().max()) < 1e-9 and float(grads[name].grad.abs().max()) < 1e-9
        else:
            torch.testing.assert_close(p.grad, grads[name].grad, rtol=1e-4, atol=1e-7, msg=name)


def test_cls_only_top_layer_refuses_what_it_cannot_do_exactly():
    from transformers import BertConfig, BertForSequenceClassification, BertForTokenClassification

    from pipeline.model import cls_only_top_layer

    kw = dict(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=48,
              max_position_embeddings=32)
    assert not cls_only_top_layer(BertForSequenceClassification(BertConfig(**kw, attn_implementation="sdpa")))
    assert not cls_only_top_layer(BertForTokenClassification(BertConfig(**kw, attn_implementation="eager")))


def test_compact_embeddings_restore_an_earlier_best_checkpoint(runs):
    """The best checkpoint (a compact state dict) is restored for the test when it is not the last."""
    kw = dict(dropout=0.0, micro_batch_tokens=64, epochs=3, num_evals=6, lr=3e-4)
    _, dense, _ = runs("rte", compact_embeddings=False, **kw)
    _, compact, _ = runs("rte", compact_embeddings=True, **kw)
    assert compact.record["best_step"] == dense.record["best_step"]
    assert compact.record["best_step"] < compact.record["total_steps"], "the case must restore a checkpoint"
    assert compact.record["test_best"] == pytest.approx(dense.record["test_best"], rel=1e-4, abs=1e-6)


def test_compact_embeddings_off_with_weight_decay(runs):
    """Weight decay toward zero would move every row, so the engine keeps the whole matrix."""
    _, res, _ = runs("rte", compact_embeddings=True, weight_decay=0.01)
    assert res.record["embedding_rows"] is None


def test_compact_embedding_module():
    from pipeline.model import (CompactEmbedding, compact_word_embeddings, compacted, dense_named_parameters,
                                dense_state_dict)

    model = tiny_bert()
    full = model.bert.embeddings.word_embeddings.weight.detach().clone()
    ids = torch.tensor([[2, 7, 7, 0], [31, 2, 0, 0]])
    ref = model.bert.embeddings.word_embeddings(ids)
    lookup = compact_word_embeddings(model, [ids, torch.tensor([0])])
    emb = model.get_input_embeddings()
    assert isinstance(emb, CompactEmbedding) and emb.rows.tolist() == [0, 2, 7, 31]
    assert lookup[[0, 2, 7, 31]].tolist() == [0, 1, 2, 3] and int(lookup[5]) == -1
    assert emb.padding_idx == 0  # BERT's padding row keeps a zero gradient
    torch.testing.assert_close(emb(lookup[ids]), ref, rtol=0, atol=0)
    with torch.no_grad():
        emb.weight[2] += 1.0  # row of id 7
    dense = dict(dense_named_parameters(model))["bert.embeddings.word_embeddings.weight"]
    expected = full.clone()
    expected[7] += 1.0
    torch.testing.assert_close(dense, expected, rtol=0, atol=0)
    torch.testing.assert_close(dense_state_dict(model)["bert.embeddings.word_embeddings.weight"], expected)
    assert compacted(model) == {"bert.embeddings.word_embeddings.weight": emb}
    with pytest.raises(ValueError, match="outside the vocabulary"):
        compact_word_embeddings(tiny_bert(), [torch.tensor([3, 50])])


def test_compaction_refuses_embeddings_tied_to_an_output_layer():
    """A masked-LM head reads every row of a tied matrix: compacting it would be wrong, so it is refused."""
    from transformers import BertConfig, BertForMaskedLM

    from pipeline.model import compact_word_embeddings, compacted

    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=16, tie_word_embeddings=True)
    model = BertForMaskedLM(cfg)
    assert model.get_output_embeddings().weight is model.get_input_embeddings().weight
    assert compact_word_embeddings(model, [torch.tensor([1, 2, 3])]) is None
    assert compacted(model) == {} and isinstance(model.get_input_embeddings(), torch.nn.Embedding)


# ---- drift -------------------------------------------------------------------------------------

def tiny_bert():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=16)
    return BertForSequenceClassification(cfg)


def test_layer_drift_blocks_are_root_sum_of_squares():
    model = tiny_bert()
    initial = {k: v.clone() for k, v in model.state_dict().items()}
    zero = layer_drift(initial, model)
    assert (zero["l2"] == 0).all() and (zero["rel"].fillna(0) == 0).all()  # zero at step 0
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn(p.shape, generator=g))
    df = layer_drift(initial, model)
    blocks, tensors = df[df.level == "block"], df[df.level == "tensor"]
    norms = start_sq_norms(initial)  # every float tensor's squared norm, integer buffers left out
    assert set(norms) == set(initial)
    assert start_sq_norms({"w": torch.full((2,), 3.0), "ids": torch.arange(3)}) == {"w": pytest.approx(18.0)}
    for k, v in norms.items():
        assert v == pytest.approx(float(initial[k].double().pow(2).sum()), rel=1e-12)
    pd.testing.assert_frame_equal(tensor_drift(initial, model, norms), tensor_drift(initial, model))
    params = dict(model.named_parameters())
    assert set(tensors["name"]) == set(params)
    # the difference is taken in float32 (each element correctly rounded) and accumulated in float64
    for r in tensors.itertuples():
        expected = float((params[r.name].detach().double() - initial[r.name].double()).norm())
        assert r.l2 == pytest.approx(expected, rel=1e-6)
        assert r.block == block_of(r.name, model)
    assert list(blocks["name"]) == ["embeddings", "block0", "block1", "block2", "pooler", "head"]
    for r in blocks.itertuples():
        members = [n for n in params if block_of(n, model) == r.name]
        expected = math.sqrt(sum(float((params[n].detach().double() - initial[n].double()).pow(2).sum())
                                 for n in members))
        norm = math.sqrt(sum(float(initial[n].double().pow(2).sum()) for n in members))
        assert r.l2 == pytest.approx(expected, rel=1e-6)
        assert r.l2 == pytest.approx(math.sqrt((tensors[tensors.block == r.name]["l2"] ** 2).sum()), rel=1e-12)
        assert r.rel == pytest.approx(expected / norm, rel=1e-6)


def test_run_drift(runs, settings):
    s, result, _ = runs("rte")
    drift = result.drift
    assert list(drift.columns) == ["step", "level", "name", "l2", "rel"]
    total = result.record["total_steps"]
    step0 = drift[drift.step == 0]
    assert len(step0) == 9 and (step0["level"] == "block").all() and (step0["l2"] == 0).all()
    assert sorted(drift[drift.level == "block"]["step"].unique()) == [0] + result.record["eval_steps"]
    final_blocks = drift[(drift.level == "block") & (drift.step == total)].set_index("name")
    final_tensors = drift[(drift.level == "tensor") & (drift.step == total)]
    # an independent computation from the start (rebuilt from the same seeds) and the final weights
    start = snapshot(build_model(s, task_spec("rte")))
    final = result.state_dict
    assert set(final_tensors["name"]) == set(start)
    for r in final_tensors.itertuples():
        d = float((final[r.name].double() - start[r.name].double()).norm())
        assert r.l2 == pytest.approx(d, rel=1e-6, abs=1e-9), r.name
    by_block = {}
    for name in start:
        b = _block(name)
        by_block[b] = by_block.get(b, 0.0) + float((final[name].double() - start[name].double()).pow(2).sum())
    assert set(final_blocks.index) == set(by_block)
    for b, v in by_block.items():
        assert final_blocks.loc[b, "l2"] == pytest.approx(math.sqrt(v), rel=1e-6)
    assert (final_blocks["l2"] > 0).all()


class _Named:
    base_model_prefix = "bert"


def _block(name):
    return block_of(name, _Named())


# ---- evaluation schedule and selection ----------------------------------------------------------

@pytest.mark.parametrize("total,n,expected", [
    (234, 10, list(range(23, 231, 23)) + [234]),
    (540, 10, list(range(54, 541, 54))),
    (96, 10, list(range(9, 91, 9)) + [96]),
    (345, 10, list(range(34, 341, 34)) + [345]),
    (4, 2, [2, 4]),
    (5, 2, [2, 4, 5]),
    (3, 10, [1, 2, 3]),
    (1, 1, [1]),
])
def test_eval_steps(total, n, expected):
    assert eval_steps(total, n) == expected


def test_total_steps():
    assert total_steps(2490, batch_size=32, epochs=3, max_steps=None) == 234
    assert total_steps(1000, batch_size=32, epochs=3, max_steps=None) == 96
    assert total_steps(1000, batch_size=32, epochs=3, max_steps=200) == 200


def test_curve_and_record_structure(runs):
    s, result, _ = runs("rte")
    rec, curve = result.record, result.curve
    total = rec["total_steps"]
    assert total == math.ceil(32 / 8) == len(curve)
    assert curve["step"].tolist() == list(range(1, total + 1))
    assert rec["eval_steps"] == eval_steps(total, s.num_evals)
    warmup = int(s.warmup_ratio * total)
    assert rec["warmup_steps"] == warmup
    expected_lr = [s.lr * linear_schedule(k - 1, total, warmup) for k in curve["step"]]
    np.testing.assert_allclose(curve["lr"].to_numpy(), expected_lr, rtol=1e-12)
    evaluated = curve["val_accuracy"].notna()
    assert curve.loc[evaluated, "step"].tolist() == rec["eval_steps"]
    assert np.isfinite(curve["train_loss"]).all() and (curve["grad_norm"] > 0).all()
    assert (rec["n_train"], rec["n_val"], rec["n_test"]) == (32, 16, 40)
    assert rec["init_seed"] == rec["data_seed"] == 0
    assert (rec["diverged"], rec["diverged_step"]) == (False, None)


def test_run_takes_run_settings(settings, tiny_features):
    with pytest.raises(TypeError, match="RunSettings"):
        run(settings("rte").to_dict(), tiny_features("rte"))


@pytest.mark.parametrize("bias_correction", [True, False])
def test_diverged_run_stops_and_is_recorded(runs, bias_correction):
    """lr 1e6: step 1 moves the weights so far that step 2's loss is NaN. Training stops there with no
    update, the weights of step 1 are evaluated (validation at step 2, test best and last), and the
    record, curve and drift end at the divergence."""
    s, result, seconds = runs("rte", lr=1.0e6, bias_correction=bias_correction)
    rec, curve = result.record, result.curve
    assert seconds < 10
    assert (rec["diverged"], rec["diverged_step"], rec["total_steps"]) == (True, 2, 4)
    assert curve["step"].tolist() == [1, 2] and np.isfinite(curve["train_loss"].tolist()).tolist() == [True, False]
    assert rec["eval_steps"] == [2] and rec["best_step"] == 2 and set(rec["val_last"]) == {"accuracy"}
    assert set(rec["test_best"]) == set(rec["test_last"]) == {"accuracy"}
    assert result.drift["step"].max() == 2
    assert np.isfinite(np.concatenate([v.numpy().ravel() for v in result.state_dict.values()
                                       if v.is_floating_point()])).all()  # no update with a NaN gradient


def test_last_and_best_test_metrics_come_from_the_right_weights(runs, settings, tiny_features):
    """test_last is the final weights' test score (re-evaluated here from the kept state)."""
    s, result, _ = runs("rte")
    model = build_model(s, task_spec("rte"))
    model.load_state_dict(result.state_dict)
    scores, pred = evaluate(model, Examples(tiny_features("rte")["test"]), task_spec("rte"), torch.device("cpu"),
                            s.eval_batch_tokens)
    assert scores == result.record["test_last"]
    assert result.record["val_last"] == {"accuracy": result.curve["val_accuracy"].iloc[-1]}


def _scripted_run(monkeypatch, settings, tiny_features, task, scores):
    """Run with the validation scores replaced by a script; every evaluation records a fingerprint of the
    weights it saw, so the test evaluations can be matched to the validation ones."""
    real = train_mod.evaluate
    calls = []
    feats = tiny_features(task)
    n_val = len(feats["val"]["labels"])
    script = list(scores)
    sel = task_spec(task).selection_metric

    def fake(model, examples, spec, device, budget):
        weights = float(sum(p.detach().double().sum() for p in model.parameters()))
        metrics, pred = real(model, examples, spec, device, budget)
        if len(examples) == n_val:
            metrics = {**metrics, sel: script.pop(0)}
            calls.append(("val", weights))
        else:
            calls.append(("test", weights))
        return metrics, pred

    monkeypatch.setattr(train_mod, "evaluate", fake)
    s = settings(task, num_evals=4)
    return run(s, feats), calls


@pytest.mark.parametrize("scores,best", [([0.5, 0.7, 0.7, 0.6], 2), ([0.5, 0.5, 0.5, 0.5], 1),
                                         ([0.1, 0.2, 0.3, 0.4], 4), ([float("nan"), 0.3, 0.2, 0.1], 2),
                                         ([0.3, float("nan"), 0.4, 0.2], 3)])
def test_best_checkpoint_selection(monkeypatch, settings, tiny_features, scores, best):
    result, calls = _scripted_run(monkeypatch, settings, tiny_features, "rte", scores)
    rec = result.record
    assert rec["eval_steps"] == [1, 2, 3, 4]
    assert rec["best_step"] == best  # strict improvement, first best kept, NaN never preferred
    val_weights = [w for kind, w in calls if kind == "val"]
    test_weights = [w for kind, w in calls if kind == "test"]
    assert test_weights[0] == val_weights[-1]  # test_last: the final weights
    assert test_weights[-1] == val_weights[best - 1]  # test_best: the best checkpoint's weights
    assert len(test_weights) == (1 if best == 4 else 2)
    if best == 4:
        assert rec["test_best"] == rec["test_last"]


def test_all_nan_validation_is_recorded_not_fatal(monkeypatch, settings, tiny_features):
    result, _ = _scripted_run(monkeypatch, settings, tiny_features, "rte", [float("nan")] * 4)
    rec = result.record
    assert rec["best_step"] in (1, 2, 3, 4)
    assert math.isnan(rec["val_best"]["accuracy"]) and math.isnan(rec["val_last"]["accuracy"])


class _Constant(torch.nn.Module):
    def __init__(self, n_out):
        super().__init__()
        self.n_out = n_out
        self.w = torch.nn.Parameter(torch.zeros(1))

    def forward(self, input_ids, token_type_ids=None, attention_mask=None):
        class Out:
            pass

        out = Out()
        out.logits = torch.ones(input_ids.shape[0], self.n_out) * torch.arange(self.n_out) + self.w
        return out


def test_constant_predictions_give_nan_not_a_crash(tiny_features, tmp_path):
    spec = task_spec("sts-b")
    ex = Examples(tiny_features("sts-b")["val"])
    scores, pred = evaluate(_Constant(1), ex, spec, torch.device("cpu"), 64)
    assert set(scores) == {"spearman", "pearson"} and all(math.isnan(v) for v in scores.values())
    assert len(pred) == len(ex)
    atomic_write_json(tmp_path / "r.json", {"val": scores})  # JSON has no NaN: written as null
    assert json.loads((tmp_path / "r.json").read_text()) == {"val": {"pearson": None, "spearman": None}}
    spec = task_spec("cola")
    scores, pred = evaluate(_Constant(2), Examples(tiny_features("cola")["val"]), spec, torch.device("cpu"), 64)
    assert scores == {"mcc": 0.0} and set(pred.tolist()) == {1}


def test_predictions_in_split_order(runs, tiny_features):
    """predict() sorts by length internally; predictions must come back in the split's order."""
    s, result, _ = runs("rte")
    spec = task_spec("rte")
    model = build_model(s, spec)
    model.load_state_dict(result.state_dict)
    model.eval()
    feats = tiny_features("rte")["test"]
    ex = Examples(feats)
    pred = train_mod.predict(model, ex, torch.device("cpu"), 4096)
    with torch.no_grad():
        one_by_one = [int(model(**{k: v for k, v in ex.batch([i]).items() if k != "labels"}).logits.argmax(-1))
                      for i in range(len(ex))]
    assert pred.tolist() == one_by_one


# ---- determinism -----------------------------------------------------------------------------

def _files(result, folder):
    rec = {k: result.record[k] for k in ("val_best", "val_last", "test_best", "test_last", "best_step",
                                         "spread_best", "spread_last", "majority_test", "eval_steps")}
    atomic_write_json(folder / "record.json", rec)
    atomic_write_csv(folder / "curve.csv", result.curve)
    atomic_write_csv(folder / "drift.csv", result.drift)
    return {name: (folder / name).read_bytes() for name in ("record.json", "curve.csv", "drift.csv")}


def test_determinism(runs, settings, tiny_features, tmp_path):
    s, first, _ = runs("rte")
    second = run(settings("rte"), tiny_features("rte"), keep_state=True)  # dropout on, as in a study
    pd.testing.assert_frame_equal(first.curve, second.curve, check_exact=True)
    pd.testing.assert_frame_equal(first.drift, second.drift, check_exact=True)
    for key in ("val_best", "val_last", "test_best", "test_last", "best_step", "spread_best", "spread_last"):
        assert first.record[key] == second.record[key], key
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert _files(first, tmp_path / "a") == _files(second, tmp_path / "b")
    assert all(torch.equal(first.state_dict[k], second.state_dict[k]) for k in first.state_dict)


# ---- a complete tiny run of each mirrored task ---------------------------------------------------

@pytest.mark.parametrize("task,val_source", [("rte", "dev_half"), ("mrpc", "dev_half"), ("sts-b", "dev_half"),
                                             ("cola", "dev_half"), ("sst-2", "train")])
def test_tiny_run_every_task(runs, task, val_source):
    s, result, seconds = runs(task, val_source=val_source)
    spec = task_spec(task)
    rec = result.record
    assert seconds < 60
    assert rec["task"] == task and rec["metric"] == spec.report_metric
    assert rec["selection_metric"] == s.selection_metric
    for key in ("val_best", "val_last", "test_best", "test_last"):
        assert set(rec[key]) == set(spec.metrics), key
        for m, v in rec[key].items():
            lo, hi = METRIC_RANGE[m]
            assert v is not None and (math.isnan(v) or lo <= v <= hi), (key, m, v)
    # the best step is the first strict maximum of the validation selection metric
    sel = f"val_{rec['selection_metric']}"
    evals = result.curve[result.curve["step"].isin(rec["eval_steps"])]
    expected, best = None, None
    for r in evals.itertuples():
        v = getattr(r, sel)
        if expected is None or (not math.isnan(v) and (best is None or math.isnan(best) or v > best)):
            expected, best = r.step, v
    assert rec["best_step"] == expected
    assert rec["val_best"][rec["selection_metric"]] == pytest.approx(best, nan_ok=True)
    if spec.is_regression:
        assert rec["spread_best"]["pred_std"] >= 0 and rec["spread_best"]["pred_major_share"] is None
        assert rec["majority_test"] == {"spearman": 0.0, "pearson": 0.0}
    else:
        assert 0.5 <= rec["spread_best"]["pred_major_share"] <= 1 and rec["spread_best"]["pred_std"] is None
        assert set(rec["majority_test"]) == set(spec.metrics)
    assert len(result.curve) == rec["total_steps"] == 4
    assert np.isfinite(result.curve["train_loss"]).all() and np.isfinite(result.curve["grad_norm"]).all()
    assert len(result.drift[result.drift.level == "block"]) == 9 * (1 + len(rec["eval_steps"]))
    assert np.isfinite(result.drift["l2"]).all()
    assert rec["timing"]["train_examples_per_s"] > 0


def test_update_norms_per_group_match_a_direct_computation():
    gen = torch.Generator().manual_seed(0)
    before = [torch.randn(5, 3, generator=gen), torch.randn(7, generator=gen), torch.randn(2, 2, generator=gen)]
    after = [b + 1e-3 * torch.randn(b.shape, generator=gen) for b in before]
    group = torch.tensor([1, 0, 1])
    got = train_mod.update_norms(after, before, group, 3)
    want = [float((after[1] - before[1]).double().norm()),
            math.sqrt(float((after[0] - before[0]).double().pow(2).sum() + (after[2] - before[2]).double().pow(2).sum())),
            0.0]
    assert got == pytest.approx(want, rel=1e-5)


def test_run_logs_update_norms_for_the_first_steps(runs):
    s, result, _ = runs("rte", update_log_steps=3)
    u = result.updates
    assert sorted(u["step"].unique()) == [1, 2, 3]
    assert (u.groupby("step")["name"].nunique() == u["name"].nunique()).all()  # every depth at every step
    assert (u["update_l2"] > 0).all() and np.isfinite(u["update_l2"]).all()


# ---- the official code's switches and the warm-up setting, through the engine --------------------

def test_warmup_steps_set_the_lr_curve(runs):
    """warmup_steps: an integer is exactly that many warm-up steps (the lr rises linearly from 0 over
    them, then decays linearly to 0), whatever warmup_ratio says; null is int(warmup_ratio x steps)."""
    s, result, _ = runs("rte", max_steps=8, warmup_steps=3, warmup_ratio=0.5, num_evals=1)
    assert result.record["total_steps"] == 8 and result.record["warmup_steps"] == 3
    factors = [0, 1 / 3, 2 / 3, 1, 4 / 5, 3 / 5, 2 / 5, 1 / 5]  # optimiser step k uses factor(k - 1)
    np.testing.assert_allclose(result.curve["lr"].to_numpy(), [s.lr * f for f in factors], rtol=1e-12, atol=0)
    assert train_mod.schedule(s.replace(warmup_steps=None), 32) == (8, 4)  # int(0.5 x 8)
    assert train_mod.schedule(s.replace(warmup_steps=0), 32) == (8, 0)
    assert train_mod.schedule(s.replace(warmup_steps=8), 32) == (8, 8)
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="train.warmup_steps: 9 warm-up steps, more than the run's 8"):
        train_mod.schedule(s.replace(warmup_steps=9), 32)


@pytest.mark.parametrize("head", ["zero", "initial"])
def test_prior_wd_head_moves_the_run_classifier_toward_its_target(settings, tiny_features, head):
    """The engine's optimiser, built from the settings: one zero-gradient step moves the new classifier
    by exactly lr x lambda x (w - target), target 0 (prior_wd_head zero) or its initial value (initial);
    every other parameter sits at its anchor and stays."""
    lr, lam = 0.1, 0.5
    s = settings("rte", lr=lr, prior_wd=lam, prior_wd_head=head)
    r = train_mod.start(s, tiny_features("rte"))
    model, opt = r.trainer.model, r.trainer.opt
    w0 = r.initial["classifier.weight"]
    with torch.no_grad():
        model.classifier.weight.add_(0.25)
    w = model.classifier.weight.detach().clone()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    train_mod.set_lr(opt, s.lr, 1.0)
    opt.step()
    target = torch.zeros_like(w) if head == "zero" else w0
    got = model.classifier.weight.detach()
    torch.testing.assert_close(got, w - lr * lam * (w - target), rtol=0, atol=1e-7)
    other = w0 if head == "zero" else torch.zeros_like(w)
    assert (got - (w - lr * lam * (w - other))).abs().max() > 1e-4  # the other target is far off
    for n, p in model.named_parameters():
        if n != "classifier.weight":
            assert torch.equal(p.detach(), before[n]), n


def _fingerprint(model) -> str:
    import hashlib

    h = hashlib.blake2b()
    for n, p in model.named_parameters():
        h.update(n.encode())
        h.update(p.detach().cpu().numpy().tobytes())
    return h.hexdigest()


def test_official_noop_weight_decay_run_equals_standard_step_for_step(settings, tiny_features):
    """weight_decay_impl official_noop: a weight-decay run's weights equal Standard's after every step
    (the official PriorWD wrapper zeroes plain weight decay), while real decay moves them."""
    feats = tiny_features("rte")
    s = settings("rte", max_steps=3, lr=1e-3)

    def trajectory(s):  # each run to its end before the next starts: start() seeds dropout's global RNG
        r = train_mod.start(s, feats)
        out = []
        for k, batch in enumerate(r.batches, start=1):
            step = train_mod.train_step(s, r.trainer, k, batch)
            out.append((step, _fingerprint(r.trainer.model), r.trainer.model.classifier.weight.detach().clone()))
        return out

    standard = trajectory(s)
    noop = trajectory(s.replace(weight_decay=0.1, weight_decay_impl="official_noop"))
    real = trajectory(s.replace(weight_decay=0.1, weight_decay_impl="decay"))
    assert len(standard) == len(noop) == len(real) == 3
    for a, b, c in zip(standard, noop, real):
        assert not a[0].diverged and a[0] == b[0]  # the same lr, loss and gradient norm
        assert a[1] == b[1]                          # every parameter bit-identical
        assert not torch.equal(a[2], c[2])           # real decay does move the weights
