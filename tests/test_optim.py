"""The optimiser: debiased Adam equals torch.optim.AdamW, BERTAdam equals its formula, the schedule,
weight decay toward zero and toward the pre-trained weights, and the depth-tagged parameter groups
with layer-wise LR decay."""
from __future__ import annotations

import math

import pytest
import torch

from pipeline.drift import snapshot
from pipeline.optim import AdamW, linear_schedule, llrd_scale, parameter_groups, set_lr

SHAPES = [(5, 3), (7,), (2, 4, 3), (1,)]
STEPS = 100


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=torch.float64) for s in SHAPES]


def _run(make_opt, steps=STEPS, seed=0):
    """Trajectory of a quadratic loss plus per-step random gradient noise (the same for every
    optimiser): a list of parameter snapshots after each step."""
    params = [p.clone().requires_grad_(True) for p in _params(seed)]
    g = torch.Generator().manual_seed(seed + 1)
    targets = [torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params]
    noise = [[torch.randn(p.shape, generator=g, dtype=torch.float64) for p in params] for _ in range(steps)]
    opt = make_opt(params)
    traj = []
    for t in range(steps):
        opt.zero_grad()
        loss = sum(((p - q) ** 2).sum() + (n * p).sum() for p, q, n in zip(params, targets, noise[t]))
        loss.backward()
        opt.step()
        traj.append([p.detach().clone() for p in params])
    return traj


def _max_diff(a, b):
    return max(float((x - y).abs().max()) for sa, sb in zip(a, b) for x, y in zip(sa, sb))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
@pytest.mark.parametrize("betas,eps", [((0.9, 0.999), 1e-8), ((0.8, 0.99), 1e-6)])
def test_debiased_equals_torch_adamw(weight_decay, betas, eps):
    lr = 1e-2
    ours = _run(lambda ps: AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                 bias_correction=True))
    ref = _run(lambda ps: torch.optim.AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
    assert _max_diff(ours, ref) <= 1e-12
    start = _params()
    assert max(float((x - y).abs().max()) for x, y in zip(ref[-1], start)) > 0.1  # it really moved


def test_parameter_missing_a_gradient_keeps_its_own_step_count():
    """A parameter without a gradient at some step is skipped, as torch.optim.AdamW skips it, and its own
    step count (not its group's) sets its bias correction afterwards."""
    def trajectory(make_opt):
        g = torch.Generator().manual_seed(0)
        a = torch.randn(5, generator=g, dtype=torch.float64).requires_grad_(True)
        b = torch.randn(3, generator=g, dtype=torch.float64).requires_grad_(True)
        opt = make_opt([a, b])
        for t in range(6):
            opt.zero_grad(set_to_none=True)
            loss = (a ** 2).sum() + ((b ** 2).sum() if t >= 2 else 0.0)  # b has no gradient at steps 1-2
            loss.backward()
            opt.step()
        return a.detach(), b.detach()

    ours = trajectory(lambda ps: AdamW(ps, lr=0.1))
    ref = trajectory(lambda ps: torch.optim.AdamW(ps, lr=0.1, weight_decay=0.0))
    assert float((ours[0] - ref[0]).abs().max()) <= 1e-12
    assert float((ours[1] - ref[1]).abs().max()) <= 1e-12


class BERTAdamReference:
    """Adam without the two bias-correction divisions, from the formula:
    m_t = b1 m + (1 - b1) g ; v_t = b2 v + (1 - b2) g^2 ; w <- w - lr * m_t / (sqrt(v_t) + eps),
    with decoupled weight decay w <- w - lr * wd * w applied from the pre-step weight."""

    def __init__(self, params, lr, betas, eps, weight_decay=0.0):
        self.params, self.lr, self.b1, self.b2, self.eps, self.wd = params, lr, *betas, eps, weight_decay
        self.m = [torch.zeros_like(p) for p in params]
        self.v = [torch.zeros_like(p) for p in params]

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        for i, p in enumerate(self.params):
            g = p.grad
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * g * g
            decayed = p - self.lr * self.wd * p
            p.copy_(decayed - self.lr * self.m[i] / (torch.sqrt(self.v[i]) + self.eps))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_bertadam_equals_formula(weight_decay):
    lr, betas, eps = 1e-2, (0.9, 0.999), 1e-6
    ours = _run(lambda ps: AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                 bias_correction=False))
    ref = _run(lambda ps: BERTAdamReference(ps, lr, betas, eps, weight_decay))
    assert _max_diff(ours, ref) <= 1e-12
    debiased = _run(lambda ps: AdamW(ps, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
    assert _max_diff(ours, debiased) > 1e-3  # the switch matters


def test_bertadam_first_step_is_inflated():
    """Step 1: BERTAdam moves by lr (1 - b1) / sqrt(1 - b2) per coordinate, debiased Adam by lr."""
    lr, b1, b2 = 1e-3, 0.9, 0.999
    for bc, expected in ((True, lr), (False, lr * (1 - b1) / math.sqrt(1 - b2))):
        p = torch.zeros(10, dtype=torch.float64, requires_grad=True)
        opt = AdamW([p], lr=lr, betas=(b1, b2), eps=1e-12, bias_correction=bc)
        p.grad = torch.linspace(-3, 3, 10, dtype=torch.float64)
        opt.step()
        assert torch.allclose(p.detach().abs(), torch.full((10,), expected, dtype=torch.float64), rtol=1e-9)


def test_optimizer_arguments_validated():
    p = [torch.zeros(2, requires_grad=True)]
    with pytest.raises(ValueError):
        AdamW(p, lr=0.0)
    with pytest.raises(ValueError):
        AdamW(p, lr=1e-3, betas=(1.0, 0.999))
    assert isinstance(AdamW(p, lr=1e-3), torch.optim.Optimizer)


# ---- schedule --------------------------------------------------------------------------------

def test_linear_schedule_values():
    total, warmup = 100, 10
    assert linear_schedule(0, total, warmup) == 0.0
    assert linear_schedule(5, total, warmup) == pytest.approx(0.5)
    assert linear_schedule(warmup, total, warmup) == 1.0
    assert linear_schedule(55, total, warmup) == pytest.approx(0.5)
    assert linear_schedule(99, total, warmup) == pytest.approx(1 / 90)
    assert linear_schedule(total, total, warmup) == 0.0
    values = [linear_schedule(s, total, warmup) for s in range(total + 1)]
    assert max(values) == 1.0 and values.index(1.0) == warmup
    assert all(a < b for a, b in zip(values[:warmup], values[1:warmup + 1]))
    assert all(a > b for a, b in zip(values[warmup:total], values[warmup + 1:]))
    assert linear_schedule(0, total, 0) == 1.0  # no warm-up: the peak at once


def test_linear_schedule_equals_transformers():
    from transformers import get_linear_schedule_with_warmup

    for total, warmup in ((234, 23), (96, 9), (40, 0), (7, 3)):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        sched = get_linear_schedule_with_warmup(opt, warmup, total)
        for step in range(total + 1):
            assert linear_schedule(step, total, warmup) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
            opt.step()
            sched.step()


# ---- weight decay toward zero and toward the pre-trained weights --------------------------------

def tiny_bert(seed=0, num_labels=2):
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                     intermediate_size=24, max_position_embeddings=16, num_labels=num_labels)
    return BertForSequenceClassification(cfg).double()


def _is_no_decay(name):
    return name.endswith(".bias") or "LayerNorm" in name


@pytest.mark.parametrize("impl", ["decay", "official_noop"])
@pytest.mark.parametrize("head", ["zero", "initial"])
@pytest.mark.parametrize("wd,pwd,eta", [(0.0, 0.3, 1.0), (0.05, 0.3, 1.0), (0.05, 0.0, 1.0), (0.05, 0.3, 0.5)])
def test_decays_with_zero_gradient(wd, pwd, eta, head, impl):
    """One step with a zero gradient moves each decayed weight by exactly
    group_lr * (wd * w + pwd * (w - anchor)); the head's anchor is zero (prior_wd_head zero) or its
    initial weight (initial); wd is 0 under weight_decay_impl official_noop; biases and LayerNorm stay."""
    lr = 0.1
    model = tiny_bert()
    initial = snapshot(model)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=g, dtype=p.dtype))  # w != anchor
    before = snapshot(model)
    groups = parameter_groups(model, lr=lr, weight_decay=wd, prior_wd=pwd, llrd_eta=eta, initial=initial,
                              prior_wd_head=head, weight_decay_impl=impl)
    opt = AdamW(groups, lr=lr)
    applied = 0.0 if impl == "official_noop" else wd
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    n_blocks = 3
    moved = 0
    for group in groups:
        scale = llrd_scale(group["depth"], n_blocks, eta)
        for name, p in zip(group["names"], group["params"]):
            w = before[name]
            if _is_no_decay(name):
                assert not group["decay"]
                assert torch.equal(p.detach(), w), name
                continue
            assert group["decay"]
            anchor = torch.zeros_like(w) if name.startswith("classifier.") and head == "zero" else initial[name]
            expected = w - lr * scale * applied * w - lr * scale * pwd * (w - anchor)
            assert torch.allclose(p.detach(), expected, rtol=0, atol=1e-14), name
            moved += int(not torch.equal(p.detach(), w))
    assert moved == (sum(1 for n, _ in model.named_parameters() if not _is_no_decay(n)) if applied or pwd else 0)


@pytest.mark.parametrize("head", ["zero", "initial"])
def test_prior_wd_moves_the_classifier_toward_its_target(head):
    """prior_wd_head: one zero-gradient step moves the new classifier's weight w by exactly
    lr x lambda x (w - target), the target 0 (zero, the paper's intent) or its random initial value
    (initial, the official PriorWD, whose "last group toward 0" case never fires); its bias is not
    decayed, and every pre-trained weight sitting at its anchor stays."""
    lr, lam = 0.1, 0.5
    model = tiny_bert()
    initial = snapshot(model)
    with torch.no_grad():
        model.classifier.weight.add_(0.25)  # the classifier has moved since the start: w != initial, w != 0
    w = model.classifier.weight.detach().clone()
    groups = parameter_groups(model, lr=lr, prior_wd=lam, initial=initial, prior_wd_head=head)
    opt = AdamW(groups, lr=lr)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    target = torch.zeros_like(w) if head == "zero" else initial["classifier.weight"]
    assert torch.allclose(model.classifier.weight.detach(), w - lr * lam * (w - target), rtol=0, atol=1e-15)
    other = initial["classifier.weight"] if head == "zero" else torch.zeros_like(w)
    assert not torch.allclose(model.classifier.weight.detach(), w - lr * lam * (w - other), rtol=0, atol=1e-6)
    for name, p in model.named_parameters():
        if name != "classifier.weight":
            assert torch.equal(p.detach(), initial[name]), name


def test_weight_decay_impl_official_noop_zeroes_plain_decay_only():
    model = tiny_bert()
    initial = snapshot(model)
    groups = parameter_groups(model, lr=0.1, weight_decay=0.01, prior_wd=0.3, initial=initial,
                              weight_decay_impl="official_noop")
    assert all(g["weight_decay"] == 0.0 for g in groups)
    assert {g["prior_wd"] for g in groups if g["decay"]} == {0.3}  # pre-trained WD is unaffected
    with pytest.raises(ValueError, match="weight_decay_impl"):
        parameter_groups(model, lr=0.1, weight_decay=0.01, weight_decay_impl="noop")
    with pytest.raises(ValueError, match="prior_wd_head"):
        parameter_groups(model, lr=0.1, prior_wd=0.1, initial=initial, prior_wd_head="init")


def test_prior_wd_pulls_toward_anchor_not_zero():
    """Pre-trained weight decay leaves a weight that sits at its anchor where it is, and moves the head
    (anchor None) toward zero."""
    model = tiny_bert()
    initial = snapshot(model)
    groups = parameter_groups(model, lr=0.1, prior_wd=0.5, initial=initial)
    head = [g for g in groups if g["depth"] == "head" and g["decay"]]
    assert head and all(a is None for g in head for a in g["anchors"])
    opt = AdamW(groups, lr=0.1)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    for name, p in model.named_parameters():
        if name.startswith("classifier.weight"):
            assert torch.allclose(p.detach(), initial[name] * (1 - 0.1 * 0.5), rtol=0, atol=1e-15)
        else:
            assert torch.equal(p.detach(), initial[name]), name


# ---- parameter groups on the embedded model ---------------------------------------------------

@pytest.fixture(scope="module")
def embedded():
    from pipeline.model import load_model

    return load_model("minilm-l6", 2)


def _expected_depth(name):
    if name.startswith("classifier."):
        return "head"
    if name.startswith("bert.embeddings."):
        return "embeddings"
    if name.startswith("bert.pooler."):
        return "pooler"
    return f"block{int(name.split('.')[3])}"


def test_every_parameter_in_exactly_one_group(embedded):
    groups = parameter_groups(embedded, lr=1e-4, weight_decay=0.01)
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len(list(embedded.parameters()))
    named = dict(embedded.named_parameters())
    seen_keys = set()
    for g in groups:
        assert (g["depth"], g["decay"]) not in seen_keys  # one group per (depth, decay flag)
        seen_keys.add((g["depth"], g["decay"]))
        assert len(g["names"]) == len(g["params"])
        for name, p in zip(g["names"], g["params"]):
            assert named[name] is p
            assert g["depth"] == _expected_depth(name)
            assert g["decay"] == (not _is_no_decay(name)), name
        assert g["weight_decay"] == (0.01 if g["decay"] else 0.0)
    depths = {g["depth"] for g in groups}
    assert depths == {"embeddings", "pooler", "head"} | {f"block{i}" for i in range(6)}


def test_biases_and_layernorm_never_decayed(embedded):
    groups = parameter_groups(embedded, lr=1e-4, weight_decay=0.1, prior_wd=0.1, initial=snapshot(embedded))
    for g in groups:
        for name in g["names"]:
            if _is_no_decay(name):
                assert g["weight_decay"] == 0.0 and g["prior_wd"] == 0.0, name
    ln = [n for g in groups for n in g["names"] if "LayerNorm.weight" in n]
    assert len(ln) == 1 + 2 * 6  # embeddings + two per block: all found, none decayed


@pytest.mark.parametrize("eta", [0.9, 0.5])
def test_llrd_scales_and_schedule(embedded, eta):
    lr, n = 2e-5, 6
    groups = parameter_groups(embedded, lr=lr, llrd_eta=eta)
    expected = {"head": 1.0, "pooler": 1.0, "embeddings": eta ** (n + 1),
                **{f"block{i}": eta ** (n - i) for i in range(n)}}
    assert expected["block5"] == eta  # the top block
    for g in groups:
        assert g["lr_scale"] == pytest.approx(expected[g["depth"]], rel=1e-12)
        assert g["lr"] == pytest.approx(lr * expected[g["depth"]], rel=1e-12)
        assert llrd_scale(g["depth"], n, eta) == pytest.approx(expected[g["depth"]], rel=1e-12)
    opt = AdamW(groups, lr=lr)
    total, warmup = 50, 5
    for step in range(total + 1):
        factor = linear_schedule(step, total, warmup)
        set_lr(opt, lr, factor)
        for g in opt.param_groups:
            assert g["lr"] == pytest.approx(lr * expected[g["depth"]] * factor, rel=1e-12, abs=1e-30)
        if factor > 0:
            head = next(g["lr"] for g in opt.param_groups if g["depth"] == "head")
            for g in opt.param_groups:
                assert g["lr"] / head == pytest.approx(expected[g["depth"]], rel=1e-12)


def test_no_llrd_means_one_lr(embedded):
    groups = parameter_groups(embedded, lr=3e-5)
    assert {g["lr"] for g in groups} == {3e-5}
    assert all(g["anchors"] is None for g in groups)
