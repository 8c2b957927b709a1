"""Weight drift: how far each part of the network has moved from where fine-tuning started.

Per transformer block (all its parameters as one vector), and for the embeddings, pooler and head:
the L2 distance from the weights at the start of fine-tuning (pre-trained, intermediate or freshly
re-initialised) and that distance relative to the start's norm.
"""
from __future__ import annotations

import pandas as pd
import torch

from .model import block_of, compacted, dense_named_parameters, depth_order, n_blocks


def snapshot(model: torch.nn.Module) -> dict:
    """A detached copy of every parameter (the start of fine-tuning), compacted embeddings whole."""
    return {n: p.detach().clone() for n, p in dense_named_parameters(model)}


def _current_and_start(initial: dict, model: torch.nn.Module):
    """(name, current, start) per parameter. A compacted embedding is compared on its rows: the
    others never move while it is compacted (pipeline.model.CompactEmbedding)."""
    compact = compacted(model)
    for name, p in model.named_parameters():
        start = initial[name]
        if name in compact:
            start = start.index_select(0, compact[name].rows.to(start.device))
        yield name, p.detach(), start


def _sq_norm(t: torch.Tensor) -> float:
    return float(torch.linalg.vector_norm(t, dtype=torch.float64)) ** 2


@torch.no_grad()
def start_sq_norms(initial: dict) -> dict:
    """The squared norm of every floating-point tensor of the start (float64), to compute once per run."""
    return {name: _sq_norm(t) for name, t in initial.items() if t.is_floating_point()}


@torch.no_grad()
def tensor_drift(initial: dict, model: torch.nn.Module, sq_norms: dict | None = None) -> pd.DataFrame:
    """Per-tensor L2 distance and squared norms (float64 accumulation). `sq_norms`: start_sq_norms(initial),
    computed once by a caller that measures drift repeatedly (computed here when not given)."""
    sq_norms = start_sq_norms(initial) if sq_norms is None else sq_norms
    rows = []
    for name, current, start in _current_and_start(initial, model):
        rows.append({"name": name, "block": block_of(name, model),
                     "sq_dist": _sq_norm(current - start), "sq_norm": sq_norms[name]})
    df = pd.DataFrame(rows)
    df["l2"] = df["sq_dist"] ** 0.5
    df["rel"] = df["l2"] / df["sq_norm"].pow(0.5).where(df["sq_norm"] > 0)
    return df


def block_drift(tensors: pd.DataFrame, model: torch.nn.Module) -> pd.DataFrame:
    """Per block: sqrt of the sum of its tensors' squared distances, relative to the start's norm."""
    g = tensors.groupby("block", sort=False)[["sq_dist", "sq_norm"]].sum()
    order = [b for b in depth_order(n_blocks(model)) if b in g.index]
    g = g.loc[order]
    out = pd.DataFrame({"name": g.index, "l2": g["sq_dist"] ** 0.5})
    out["rel"] = out["l2"].to_numpy() / g["sq_norm"].pow(0.5).where(g["sq_norm"] > 0).to_numpy()
    return out.reset_index(drop=True)


def layer_drift(initial_state_dict: dict, model: torch.nn.Module) -> pd.DataFrame:
    """A DataFrame of distances per block and per tensor (column `level`: block or tensor)."""
    tensors = tensor_drift(initial_state_dict, model)
    blocks = block_drift(tensors, model).assign(level="block", block=lambda d: d["name"])
    per_tensor = tensors[["name", "block", "l2", "rel"]].assign(level="tensor")
    return pd.concat([blocks[["level", "block", "name", "l2", "rel"]],
                      per_tensor[["level", "block", "name", "l2", "rel"]]], ignore_index=True)
