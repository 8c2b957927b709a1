"""Re-init: re-initialising the pooler and the top L pre-trained layers (paper Sec. 5; App. F).

What each architecture redraws, as the official code does (run_glue.py `main()`; paper-details.md 4.2,
6.5), with std = the architecture's initialisation scale (`initializer_range`; BART's `init_std`):

- BERT-style (BERT, RoBERTa, ELECTRA, ...): the top L blocks of <base>.encoder.layer, every Linear
  weight ~ N(0, std^2) with zero bias, every LayerNorm (1, 0) (BERT's own `_init_weights`); the pooler's
  Linear likewise when `reinit_pooler` and the classifier has a pooler (BERT; RoBERTa's and ELECTRA's
  classifiers have none, so the flag changes nothing there).
- XLNet: the top L blocks of transformer.layer: the feed-forward Linear weights ~ N(0, std^2) with zero
  biases, both LayerNorms (1, 0), and the relative attention's q, k, v, o, r, r_r_bias, r_s_bias,
  r_w_bias and seg_embed ~ N(0, std^2) (the official code draws the three relative biases too, where
  one might have expected zeros).
- BART: the top L blocks of the DECODER (model.decoder.layers), through BART's own `_init_weights` in
  the official code: Linear weights ~ N(0, init_std^2) with zero biases, and the LayerNorms left
  as they were. That helper has no LayerNorm branch (transformers 2.x-4.x `PretrainedBartModel
  ._init_weights`: Linear, Embedding, positional embeddings only), so the official BART Re-init
  keeps the pre-trained LayerNorm weights and biases of the re-drawn layers; the paper's Table 7 BART
  numbers come from that, and so does this module (it does not reset them to (1, 0) as it does for
  BERT). The encoder and the decoder's embeddings are untouched. XLNet and BART have no pooler.

Every parameter of a re-drawn layer is accounted for before anything is drawn (re-drawn, set to a
constant, or deliberately kept): a layer holding anything else is refused, so a new transformers
release cannot silently leave a tensor pre-trained. Draws come from the given generator in module order
(for BERT-style layers, the order of BERT's `_init_weights`).
"""
from __future__ import annotations

import torch
from torch import nn

from .model import _init_module, base_model, init_std, model_type

# Per architecture: the path, under the base model, of the block list whose top L Re-init redraws.
REINIT_STACKS = {"xlnet": "layer", "bart": "decoder.layers"}
BERT_REINIT_STACK = "encoder.layer"

_XLNET_ATTENTION = ("q", "k", "v", "o", "r", "r_r_bias", "r_s_bias", "r_w_bias", "seg_embed")


def reinit_stack(model: nn.Module) -> nn.ModuleList:
    """The block list whose top layers Re-init redraws (BERT-style: encoder.layer; XLNet:
    transformer.layer; BART: the decoder's layers)."""
    path = REINIT_STACKS.get(model_type(model), BERT_REINIT_STACK)
    layers = base_model(model)
    for part in path.split("."):
        layers = getattr(layers, part, None)
    if not isinstance(layers, nn.ModuleList):
        raise NotImplementedError(
            f"Re-init supports BERT-style encoders (<base model>.encoder.layer: BERT, RoBERTa, ELECTRA), "
            f"XLNet (transformer.layer) and BART (model.decoder.layers); {model.__class__.__name__} "
            f"has no {path} list")
    return layers


def _plan_bert(layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    plan = []
    for m in layer.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            plan.append(("normal", m.weight))
            if getattr(m, "bias", None) is not None:
                plan.append(("zero", m.bias))
        elif isinstance(m, nn.LayerNorm):
            plan += [("one", m.weight), ("zero", m.bias)]
    return plan


def _plan_xlnet(layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    plan = []
    for m in layer.modules():
        if isinstance(m, nn.Linear):
            plan.append(("normal", m.weight))
            if m.bias is not None:
                plan.append(("zero", m.bias))
        elif isinstance(m, nn.LayerNorm):
            plan += [("one", m.weight), ("zero", m.bias)]
        elif type(m).__name__ == "XLNetRelativeAttention":
            plan += [("normal", getattr(m, name)) for name in _XLNET_ATTENTION]
    return plan


def _plan_bart(layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    plan = []
    for m in layer.modules():
        if isinstance(m, nn.Linear):
            plan.append(("normal", m.weight))
            if m.bias is not None:
                plan.append(("zero", m.bias))
        elif isinstance(m, nn.LayerNorm):  # BART's _init_weights leaves LayerNorm alone (module doc)
            plan += [("keep", m.weight), ("keep", m.bias)]
    return plan


_PLANS = {"xlnet": _plan_xlnet, "bart": _plan_bart}


def reinit_plan(model: nn.Module, layer: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """[(action, tensor)] for one layer, in draw order: normal (N(0, std^2)), zero, one or keep.
    Raises when a parameter of the layer is not in the plan (e.g. an embedding inside an XLNet or BART
    layer: none has one today)."""
    plan = _PLANS.get(model_type(model), _plan_bert)(layer)
    covered = {id(t) for _, t in plan}
    missing = [n for n, p in layer.named_parameters() if id(p) not in covered]
    if missing:
        raise NotImplementedError(
            f"Re-init of a {type(layer).__name__} would leave {missing} pre-trained: this layer holds "
            f"parameters the {model_type(model) or 'BERT-style'} Re-init does not know")
    return plan


@torch.no_grad()
def _execute(plan, std: float, generator: torch.Generator | None) -> None:
    for action, t in plan:
        if action == "normal":
            t.normal_(0.0, std, generator=generator)
        elif action == "zero":
            t.zero_()
        elif action == "one":
            t.fill_(1.0)


def reinit_top_layers(model: nn.Module, n_layers: int, reinit_pooler: bool = True,
                      generator: torch.Generator | None = None) -> nn.Module:
    """Re-initialise the pooler (when asked and the model has one) and the top `n_layers` layers of
    the architecture's Re-init stack (`reinit_stack`), as the module doc says; nothing else is
    touched. Works on a task model or a bare encoder; returns the model. Everything is checked (range,
    layer contents) before anything is drawn."""
    layers = reinit_stack(model)
    if not 0 <= n_layers <= len(layers):
        raise ValueError(f"reinit_layers must be in 0..{len(layers)} for this model, got {n_layers}")
    std = init_std(model.config)
    top = list(layers)[len(layers) - n_layers:] if n_layers else []
    plans = [reinit_plan(model, layer) for layer in top]
    if reinit_pooler:
        pooler = getattr(base_model(model), "pooler", None)
        if pooler is not None:  # ELECTRA, RoBERTa, XLNet and BART classifiers have none
            _init_module(pooler, std, generator)
    for plan in plans:
        _execute(plan, std, generator)
    return model


__all__ = ["reinit_top_layers", "reinit_stack", "reinit_plan", "REINIT_STACKS"]
