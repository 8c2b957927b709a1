"""Re-init of the top blocks (`pipeline.model.reinit_top_layers`) across encoder architectures.

Tiny randomly configured BERT, RoBERTa and ELECTRA sequence classifiers (no download) are first
filled with arbitrary "pre-trained" values, so that every re-initialised parameter visibly changes
(a fresh LayerNorm is already (1, 0)); then the top blocks, the pooler flag, the generator and the
range check are tested, and an architecture without `base_model.encoder.layer` must fail clearly.
"""
from __future__ import annotations

import pytest
import torch
import transformers
from torch import nn

from pipeline.model import base_model, encoder_layers, reinit_top_layers

N_BLOCKS = 4
STD = 0.05  # initializer_range, distinct from the default 0.02 and from the "pre-trained" values
COMMON = dict(vocab_size=100, hidden_size=32, num_hidden_layers=N_BLOCKS, num_attention_heads=2,
              intermediate_size=64, max_position_embeddings=64, num_labels=2, initializer_range=STD)
ARCHS = {
    "bert": (transformers.BertConfig, transformers.BertForSequenceClassification, {}),
    "roberta": (transformers.RobertaConfig, transformers.RobertaForSequenceClassification, {}),
    # embedding_size != hidden_size gives ELECTRA an embeddings_project, which must stay untouched
    "electra": (transformers.ElectraConfig, transformers.ElectraForSequenceClassification,
                {"embedding_size": 16}),
}
POOLERLESS = ["roberta", "electra"]


def build(arch: str) -> nn.Module:
    """A tiny classifier whose every parameter is an arbitrary, deterministic non-initial value."""
    config_cls, model_cls, extra = ARCHS[arch]
    torch.manual_seed(0)
    model = model_cls(config_cls(**COMMON, **extra)).eval()
    g = torch.Generator().manual_seed(2024)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5 + 0.1)
    return model


def snapshot(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def layer_prefix(model: nn.Module, i: int) -> str:
    return f"{model.base_model_prefix}.encoder.layer.{i}."


def top_prefixes(model: nn.Module, n_layers: int) -> list[str]:
    return [layer_prefix(model, i) for i in range(N_BLOCKS - n_layers, N_BLOCKS)]


def pooler_prefix(model: nn.Module) -> str:
    return f"{model.base_model_prefix}.pooler."


def changed_keys(before: dict, model: nn.Module) -> set[str]:
    after = model.state_dict()
    assert after.keys() == before.keys()
    return {k for k in before if not torch.equal(before[k], after[k])}


def param_keys_under(model: nn.Module, prefixes: list[str]) -> set[str]:
    return {n for n, _ in model.named_parameters() if any(n.startswith(p) for p in prefixes)}


def check_initialised(module: nn.Module, std: float) -> dict[str, int]:
    """Linear weights ~ N(0, std^2), biases 0, LayerNorm weight 1 and bias 0; returns the counts."""
    found = {"linear": 0, "layernorm": 0}
    for name, m in module.named_modules():
        if isinstance(m, nn.Linear):
            w = m.weight.detach().double()
            n = w.numel()
            assert abs(float(w.mean())) < 5 * std / n ** 0.5, name
            assert float(w.std()) == pytest.approx(std, rel=6 / (2 * n) ** 0.5), name
            assert m.bias is not None and torch.count_nonzero(m.bias) == 0, name
            found["linear"] += 1
        elif isinstance(m, nn.LayerNorm):
            assert torch.equal(m.weight, torch.ones_like(m.weight)), name
            assert torch.equal(m.bias, torch.zeros_like(m.bias)), name
            found["layernorm"] += 1
    return found


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("n_layers", [1, 2, N_BLOCKS])
def test_top_blocks_reinitialised_rest_bit_identical(arch, n_layers):
    model = build(arch)
    before = snapshot(model)
    assert reinit_top_layers(model, n_layers, reinit_pooler=False,
                             generator=torch.Generator().manual_seed(7)) is model
    layers = encoder_layers(model)
    for layer in list(layers)[N_BLOCKS - n_layers:]:
        # every block has Q, K, V, attention output, intermediate, output Linear and two LayerNorms
        assert check_initialised(layer, STD) == {"linear": 6, "layernorm": 2}
    top = param_keys_under(model, top_prefixes(model, n_layers))
    assert len(top) == n_layers * 16
    # exactly the top blocks' parameters changed: lower blocks, embeddings, pooler, head are bit-identical
    assert changed_keys(before, model) == top


@pytest.mark.parametrize("reinit_pooler", [True, False])
def test_bert_pooler_follows_flag(reinit_pooler):
    model = build("bert")
    assert base_model(model).pooler is not None
    before = snapshot(model)
    reinit_top_layers(model, 1, reinit_pooler=reinit_pooler, generator=torch.Generator().manual_seed(7))
    expected = param_keys_under(model, top_prefixes(model, 1))
    if reinit_pooler:
        assert check_initialised(base_model(model).pooler, STD) == {"linear": 1, "layernorm": 0}
        expected |= {pooler_prefix(model) + "dense.weight", pooler_prefix(model) + "dense.bias"}
    assert changed_keys(before, model) == expected


@pytest.mark.parametrize("arch", POOLERLESS)
def test_poolerless_classifiers_ignore_reinit_pooler(arch):
    model = build(arch)
    assert getattr(base_model(model), "pooler", None) is None  # the premise: no pooler in the classifier
    assert not any(k.startswith(pooler_prefix(model)) for k in model.state_dict())
    before = snapshot(model)
    reinit_top_layers(model, 2, reinit_pooler=True, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == param_keys_under(model, top_prefixes(model, 2))


@pytest.mark.parametrize("arch", list(ARCHS))
def test_generator_seed_determines_weights(arch):
    def reinit(seed: int, global_seed: int) -> dict[str, torch.Tensor]:
        model = build(arch)
        torch.manual_seed(global_seed)  # the global stream must not matter, only the generator
        reinit_top_layers(model, 2, reinit_pooler=True, generator=torch.Generator().manual_seed(seed))
        return snapshot(model)

    a, b, c = reinit(11, 0), reinit(11, 999), reinit(12, 0)
    assert a.keys() == b.keys() == c.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    model = build(arch)
    drawn = [n + ".weight" for n, m in model.named_modules() if isinstance(m, nn.Linear)
             and any((n + ".").startswith(p) for p in top_prefixes(model, 2) + [pooler_prefix(model)])]
    assert len(drawn) == 12 + (1 if arch == "bert" else 0)
    for k in drawn:  # every re-drawn weight differs under another seed
        assert not torch.equal(a[k], c[k]), k
    for k in set(a) - set(drawn):  # biases/LayerNorm (constants) and untouched parameters agree
        assert torch.equal(a[k], c[k]), k


@pytest.mark.parametrize("arch", list(ARCHS))
def test_zero_layers_without_pooler_changes_nothing(arch):
    model = build(arch)
    before = snapshot(model)
    reinit_top_layers(model, 0, reinit_pooler=False, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == set()


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("n_layers", [N_BLOCKS + 1, -1])
def test_out_of_range_layers_raise(arch, n_layers):
    model = build(arch)
    before = snapshot(model)
    with pytest.raises(ValueError, match=rf"0\.\.{N_BLOCKS}\b.*got {n_layers}"):
        reinit_top_layers(model, n_layers, generator=torch.Generator().manual_seed(7))
    assert changed_keys(before, model) == set()  # nothing (not even the pooler) touched before raising


class TinyMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)


def tiny_gpt2() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=100, n_embd=32, n_layer=2, n_head=2, n_positions=64,
                                  num_labels=2, pad_token_id=0, bos_token_id=0, eos_token_id=0)
    return transformers.GPT2ForSequenceClassification(cfg)


@pytest.mark.parametrize("make", [tiny_gpt2, TinyMLP], ids=["gpt2", "plain-module"])
def test_unsupported_architecture_fails_clearly(make):
    model = make()
    before = snapshot(model)
    name = model.__class__.__name__
    with pytest.raises(NotImplementedError, match=name) as info:
        reinit_top_layers(model, 1, generator=torch.Generator().manual_seed(7))
    assert "encoder.layer" in str(info.value)
    assert changed_keys(before, model) == set()
