"""Weight drift: how far each part of the network has moved from where fine-tuning started.

Per transformer block (all its parameters as one vector), and for the embeddings, pooler and head:
the L2 distance from the weights at the start of fine-tuning (pre-trained, intermediate or freshly
re-initialised) and that distance relative to the start's norm.
"""
from __future__ import annotations

import pandas as pd
import torch

from .model import block_of, dense_named_parameters, depth_order, n_blocks


def snapshot(model: torch.nn.Module) -> dict:
    """A detached copy of every parameter (the start of fine-tuning), compacted embeddings whole."""
    return {n: p.detach().clone() for n, p in dense_named_parameters(model)}


@torch.no_grad()
def tensor_drift(initial: dict, model: torch.nn.Module) -> pd.DataFrame:
    """Per-tensor L2 distance and squared norms (float64 accumulation)."""
    rows = []
    for name, p in dense_named_parameters(model):
        start = initial[name]
        diff = (p.detach().double() - start.double())
        rows.append({"name": name, "block": block_of(name, model),
                     "sq_dist": float(diff.pow(2).sum()), "sq_norm": float(start.double().pow(2).sum())})
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
