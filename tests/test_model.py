"""Re-init of the top layers, the task head drawn from its own stream, and Mixout."""
from __future__ import annotations

import copy
import types

import pytest
import torch
from torch import nn

from pipeline.drift import snapshot
from pipeline.model import MixoutLinear, apply_mixout, block_of, init_head, load_model, mixout_weight
from pipeline.reinit import reinit_top_layers
from pipeline.seeds import generator


@pytest.fixture(scope="module")
def embedded_pristine():
    """The embedded model as loaded (never mutated: tests work on deep copies)."""
    return load_model("minilm-l6", 2)


def bare_bert(initializer_range=0.05, layers=4):
    from transformers import BertConfig, BertModel

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                     intermediate_size=128, max_position_embeddings=32, initializer_range=initializer_range)
    return BertModel(cfg)


def _modules_of(model, prefix):
    return [(n, m) for n, m in model.named_modules() if n.startswith(prefix)]


def _check_reinitialised(model, prefix, std):
    """Linear weights N(0, std^2), biases 0, LayerNorm weight 1 and bias 0, under `prefix`."""
    found = {"linear": 0, "ln": 0}
    for name, m in _modules_of(model, prefix):
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double()
            n = w.numel()
            assert abs(float(w.mean())) < 5 * std / n ** 0.5, name
            assert float(w.std()) == pytest.approx(std, rel=max(0.02, 6 / (2 * n) ** 0.5)), name
            assert torch.count_nonzero(m.bias) == 0, name
            found["linear"] += 1
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
            found["ln"] += 1
    return found


def _top_prefixes(base, n_layers, n_total):
    return [f"{base}encoder.layer.{i}." for i in range(n_total - n_layers, n_total)]


def _untouched(before, model, touched_prefixes):
    changed, same = [], []
    for name, p in model.named_parameters():
        if any(name.startswith(t) for t in touched_prefixes):
            changed.append(name)
            continue
        assert torch.equal(p.detach(), before[name]), f"{name} was modified"
        same.append(name)
    return changed, same


@pytest.mark.parametrize("n_layers,pooler", [(2, True), (1, False), (6, True)])
def test_reinit_embedded(embedded_pristine, n_layers, pooler):
    model = copy.deepcopy(embedded_pristine)
    before = snapshot(model)
    out = reinit_top_layers(model, n_layers, reinit_pooler=pooler, generator=generator("reinit", 0))
    assert out is model
    std = model.config.initializer_range
    assert std == 0.02
    touched = _top_prefixes("bert.", n_layers, 6) + (["bert.pooler."] if pooler else [])
    for prefix in _top_prefixes("bert.", n_layers, 6):
        found = _check_reinitialised(model, prefix, std)
        assert found == {"linear": 6, "ln": 2}
    if pooler:
        assert _check_reinitialised(model, "bert.pooler.", std)["linear"] == 1
    changed, same = _untouched(before, model, touched)
    assert "classifier.weight" in same and "bert.embeddings.word_embeddings.weight" in same
    for name in changed:  # weights really redrawn (LayerNorm/bias tensors that were already 1/0 excepted)
        if name.endswith("dense.weight") or name.endswith("query.weight"):
            assert not torch.equal(dict(model.named_parameters())[name].detach(), before[name]), name


def test_reinit_zero_layers_no_pooler_changes_nothing(embedded_pristine):
    model = copy.deepcopy(embedded_pristine)
    before = snapshot(model)
    reinit_top_layers(model, 0, reinit_pooler=False)
    _untouched(before, model, [])


def test_reinit_pooler_only(embedded_pristine):
    model = copy.deepcopy(embedded_pristine)
    before = snapshot(model)
    # the embedded model's pooler was never trained (bias exactly 0, weight std ~0.009)
    assert torch.count_nonzero(before["bert.pooler.dense.bias"]) == 0
    assert 0.005 < float(before["bert.pooler.dense.weight"].std()) < 0.015
    reinit_top_layers(model, 0, reinit_pooler=True, generator=generator("reinit", 1))
    _check_reinitialised(model, "bert.pooler.", 0.02)
    _untouched(before, model, ["bert.pooler."])


@pytest.mark.parametrize("n_layers", [2, 4])
def test_reinit_bare_bertmodel(n_layers):
    model = bare_bert(initializer_range=0.05)
    before = snapshot(model)
    reinit_top_layers(model, n_layers, reinit_pooler=True, generator=generator("reinit", 0))
    touched = _top_prefixes("", n_layers, 4) + ["pooler."]
    for prefix in touched:
        found = _check_reinitialised(model, prefix, 0.05)  # the config's initializer_range, not 0.02
        assert found["linear"] >= 1
    changed, same = _untouched(before, model, touched)
    assert any(n.startswith("embeddings.") for n in same)
    assert ("encoder.layer.0.output.dense.weight" in same) == (n_layers < 4)


def test_reinit_bare_without_pooler():
    model = bare_bert()
    before = snapshot(model)
    reinit_top_layers(model, 1, reinit_pooler=False, generator=generator("reinit", 0))
    _untouched(before, model, ["encoder.layer.3."])
    assert torch.equal(model.pooler.dense.weight, before["pooler.dense.weight"])


def test_reinit_is_reproducible_from_its_stream():
    a, b, c = bare_bert(), bare_bert(), bare_bert()
    reinit_top_layers(a, 2, generator=generator("reinit", 7))
    reinit_top_layers(b, 2, generator=generator("reinit", 7))
    reinit_top_layers(c, 2, generator=generator("reinit", 8))
    sa, sb, sc = snapshot(a), snapshot(b), snapshot(c)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["encoder.layer.3.output.dense.weight"], sc["encoder.layer.3.output.dense.weight"])


@pytest.mark.parametrize("bad", [-1, 5, 100])
def test_reinit_invalid_layers(bad):
    with pytest.raises(ValueError):
        reinit_top_layers(bare_bert(layers=4), bad)


def test_reinit_invalid_layers_embedded(embedded_pristine):
    model = copy.deepcopy(embedded_pristine)
    with pytest.raises(ValueError):
        reinit_top_layers(model, 7)


# ---- the head --------------------------------------------------------------------------------

def test_init_head_same_seed_same_head(embedded_pristine):
    a, b, c = (copy.deepcopy(embedded_pristine) for _ in range(3))
    before = snapshot(a)
    torch.manual_seed(1)  # the global RNG plays no part
    init_head(a, generator("head_init", 5))
    torch.manual_seed(2)
    init_head(b, generator("head_init", 5))
    init_head(c, generator("head_init", 6))
    assert torch.equal(a.classifier.weight, b.classifier.weight)
    assert torch.equal(a.classifier.bias, b.classifier.bias)
    assert not torch.equal(a.classifier.weight, c.classifier.weight)
    assert torch.count_nonzero(a.classifier.bias) == 0
    assert float(a.classifier.weight.detach().std()) == pytest.approx(0.02, rel=0.15)
    _untouched(before, a, ["classifier."])  # only the head


# ---- Mixout ----------------------------------------------------------------------------------

def test_mixout_p0_is_identity():
    w = torch.randn(4, 6)
    out = mixout_weight(w, torch.zeros(4, 6), 0.0, torch.Generator().manual_seed(0), grad="exact")
    assert torch.equal(out, w)


def test_mixout_mean_equals_weight():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(5, 12, generator=g, dtype=torch.float64)
    target = torch.randn(5, 12, generator=g, dtype=torch.float64)
    p, n = 0.3, 4000
    gen = torch.Generator().manual_seed(123)
    samples = torch.stack([mixout_weight(w, target, p, gen, grad="exact") for _ in range(n)])
    mean = samples.mean(0)
    se = (w - target).abs() * (p / (1 - p) / n) ** 0.5  # each sample is target + keep (w - target) / (1 - p)
    z = (mean - w) / se
    assert float(z.abs().max()) < 5
    assert abs(float(z.mean())) < 5 / (z.numel() ** 0.5)
    # and it is not simply the weight: individual samples vary, the empirical drop rate is p
    assert float(samples.std(0).min()) > 0
    dropped = (samples[:, 0, :] - target[0]).abs() < (samples[:, 0, :] - w[0]).abs()
    assert float(dropped.double().mean()) == pytest.approx(p, abs=0.02)


def test_mixout_mask_constant_along_columns_and_gradients():
    p = 0.5
    w = (torch.rand(8, 20, dtype=torch.float64) + 0.5).requires_grad_(True)  # no zero entries
    out = mixout_weight(w, torch.zeros(8, 20, dtype=torch.float64), p, torch.Generator().manual_seed(4),
                        grad="exact")
    dropped = out.detach() == 0  # target 0: a dropped entry is exactly 0, a kept one w / (1 - p)
    # one mask per input unit (column), shared by all rows
    assert torch.equal(dropped, dropped[0:1].expand_as(dropped))
    assert 0 < int(dropped[0].sum()) < 20
    kept = ~dropped
    assert torch.allclose(out.detach()[kept], w.detach()[kept] / (1 - p))
    out.sum().backward()
    assert torch.equal(w.grad[dropped], torch.zeros_like(w.grad[dropped]))
    assert torch.allclose(w.grad[kept], torch.full_like(w.grad[kept], 1 / (1 - p)))


def test_mixout_with_target_mixes_toward_target():
    p = 0.4
    g = torch.Generator().manual_seed(0)
    w = torch.randn(3, 30, generator=g, dtype=torch.float64)
    t = torch.randn(3, 30, generator=g, dtype=torch.float64)
    out = mixout_weight(w, t, p, torch.Generator().manual_seed(9), grad="exact")
    keep = (out - t) * (1 - p) / (w - t)  # 0 where dropped, 1 where kept
    assert torch.allclose(keep, keep.round(), atol=1e-9)
    assert set(keep.round().unique().tolist()) == {0.0, 1.0}
    assert torch.equal(keep.round(), keep.round()[0:1].expand_as(keep))


class _OneLinear(nn.Module):
    """A model of one Linear layer (apply_mixout needs a `config`)."""

    def __init__(self, n_in=20, n_out=7):
        super().__init__()
        self.config = types.SimpleNamespace()
        self.fc = nn.Linear(n_in, n_out, dtype=torch.float64)


@pytest.mark.parametrize("grad", ["exact", "official"])
def test_mixout_backward_switch(grad):
    """One backward pass through a Mixout layer (p = 0.9). official: the gradient reaching the weight is
    the incoming gradient (that of the mixed weight) times the 0/1 keep-mask, computed here
    independently; exact: autograd of the forward, i.e. that times 1 / (1 - p), 10x the official one."""
    p, seed = 0.9, 3
    g = torch.Generator().manual_seed(0)
    model = _OneLinear()
    apply_mixout(model, p, torch.Generator().manual_seed(seed), grad=grad)
    fc = model.fc
    target = fc.mixout_target.clone()
    with torch.no_grad():  # training has moved the weight away from its target
        fc.weight.add_(0.3 * torch.randn(fc.weight.shape, generator=g, dtype=torch.float64))
    w, b = fc.weight.detach().clone(), fc.bias.detach().clone()
    x = torch.randn(5, 20, generator=g, dtype=torch.float64)
    upstream = torch.randn(5, 7, generator=g, dtype=torch.float64)
    model.train()
    out = fc(x)
    (out * upstream).sum().backward()

    # the reference: the same keep-mask (same generator stream: one Bernoulli(1 - p) per input unit)
    keep = torch.empty(20, dtype=torch.float64)
    keep.bernoulli_(1 - p, generator=torch.Generator().manual_seed(seed))
    assert 0 < int(keep.sum()) < 20  # some columns kept, some dropped
    keep = keep.unsqueeze(0).expand(7, 20)
    mixed = ((keep * w + (1 - keep) * target - p * target) / (1 - p)).requires_grad_(True)
    ref_out = nn.functional.linear(x, mixed, b)
    (ref_out * upstream).sum().backward()
    assert torch.equal(out.detach(), ref_out.detach())  # the forward is Mixout's under both switches
    incoming = mixed.grad  # the gradient of the mixed weight: upstream^T x
    assert torch.allclose(incoming, upstream.T @ x, rtol=0, atol=1e-12)
    if grad == "official":
        expected = incoming * keep
    else:  # autograd of the forward, from a fresh leaf
        leaf = w.clone().requires_grad_(True)
        fwd = (keep * leaf + (1 - keep) * target - p * target) / (1 - p)
        (nn.functional.linear(x, fwd, b) * upstream).sum().backward()
        expected = leaf.grad
        assert torch.allclose(expected, incoming * keep / (1 - p), rtol=1e-12, atol=1e-12)
    assert torch.allclose(fc.weight.grad, expected, rtol=1e-12, atol=1e-12)
    assert torch.count_nonzero(fc.weight.grad[:, keep[0] == 0]) == 0  # dropped columns get nothing
    assert torch.allclose(fc.bias.grad, upstream.sum(0), rtol=0, atol=1e-12)  # biases are not mixed


def test_mixout_switches_differ_only_in_the_backward_by_1_minus_p():
    """Same draws, same forward; the official weight gradient is (1 - p) times the exact one."""
    p = 0.9
    grads, outs = {}, {}
    for grad in ("exact", "official"):
        w = (torch.randn(6, 30, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
             .requires_grad_(True))
        t = torch.randn(6, 30, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        out = mixout_weight(w, t, p, torch.Generator().manual_seed(5), grad=grad)
        (out * torch.arange(180, dtype=torch.float64).view(6, 30)).sum().backward()
        grads[grad], outs[grad] = w.grad, out.detach()
    assert torch.equal(outs["exact"], outs["official"])
    assert torch.count_nonzero(grads["official"]) > 0
    assert torch.allclose(grads["official"], (1 - p) * grads["exact"], rtol=1e-12, atol=0)


def test_mixout_grad_is_a_required_named_setting():
    with pytest.raises(TypeError):
        apply_mixout(_OneLinear(), 0.5, torch.Generator())  # no default: the run must say which
    with pytest.raises(ValueError, match="exact.*official"):
        apply_mixout(_OneLinear(), 0.5, torch.Generator(), grad="autograd")
    model = apply_mixout(_OneLinear(), 0.5, torch.Generator(), grad="official")
    assert model.fc.mixout_grad == "official"


def tiny_classifier():
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=60, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=48, max_position_embeddings=24, hidden_dropout_prob=0.1,
                     attention_probs_dropout_prob=0.1, num_labels=2)
    return BertForSequenceClassification(cfg).eval()


def test_apply_mixout():
    model = tiny_classifier()
    reference = copy.deepcopy(model)
    ids = torch.randint(1, 60, (3, 10), generator=torch.Generator().manual_seed(0))
    apply_mixout(model, 0.5, generator("mixout", 0), grad="exact")
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 2 * 6 + 2 and all(isinstance(m, MixoutLinear) for m in linears)
    assert all(torch.equal(m.mixout_target, m.weight) for m in linears)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, nn.Dropout))
    assert model.config.hidden_dropout_prob == 0.0
    # move the weights away from their targets, as training does (same move on the reference)
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for (_, m), (_, r) in zip(model.named_modules(), reference.named_modules()):
            if isinstance(m, nn.Linear):
                delta = 0.05 * torch.randn(m.weight.shape, generator=g)
                m.weight.add_(delta)
                r.weight.add_(delta)
    reference.eval()
    with torch.no_grad():
        plain = reference(input_ids=ids).logits
    model.eval()
    with torch.no_grad():
        e1, e2 = model(input_ids=ids).logits, model(input_ids=ids).logits
    assert torch.equal(e1, e2)  # deterministic in evaluation
    assert torch.allclose(e1, plain, atol=1e-6)  # the plain (current) weight, not the target
    model.train()
    with torch.no_grad():
        t1, t2 = model(input_ids=ids).logits, model(input_ids=ids).logits
    assert not torch.allclose(t1, t2, atol=1e-4)  # Mixout acts in training
    assert not torch.allclose(t1, plain, atol=1e-4)


def test_mixout_training_equals_plain_when_weight_is_target():
    """While the weights equal their targets, mixing changes nothing, and with ordinary dropout off the
    training-mode forward equals the evaluation forward: proof that dropout really is off."""
    model = tiny_classifier()
    ids = torch.randint(1, 60, (3, 10), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        plain = model(input_ids=ids).logits
    apply_mixout(model, 0.3, generator("mixout", 0), grad="exact")
    model.train()
    with torch.no_grad():
        out = model(input_ids=ids).logits
    assert torch.allclose(out, plain, atol=1e-5)
    # and with ordinary dropout left on, training mode would differ
    other = tiny_classifier().train()
    with torch.no_grad():
        assert not torch.allclose(other(input_ids=ids).logits, plain, atol=1e-5)


def test_block_of_tags():
    model = tiny_classifier()
    tags = {n: block_of(n, model) for n, _ in model.named_parameters()}
    assert tags["bert.embeddings.word_embeddings.weight"] == "embeddings"
    assert tags["bert.encoder.layer.1.output.dense.weight"] == "block1"
    assert tags["bert.pooler.dense.bias"] == "pooler"
    assert tags["classifier.weight"] == "head"


@pytest.mark.parametrize("name", ["./no-such-model-folder", "nobody/no-such-model-xyz"])
def test_unloadable_model_fails_with_how_to_fix(monkeypatch, name):
    """A typo or an offline Hub id fails at load time, naming the model and the ways out."""
    from pipeline.model import ModelLoadError, load_model

    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # read at import: without this, a Hub id is looked up online and waits for the network's timeout
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError) as err:
        load_model(name, 2)
    msg = str(err.value)
    assert repr(name) in msg and "local folder" in msg and "minilm-l6" in msg
