"""Named random streams. Each source of randomness draws from its own generator whose seed is
derived from (stream name, seed), so two conditions with the same seeds share the head
initialisation, the batch order and the dropout masks and differ only in what the condition changes.

Streams: head_init and reinit follow the run's init_seed; batch_order, dropout and mixout follow
its data_seed. Splits never use any of them (their seeds are study configuration).
"""
from __future__ import annotations

import hashlib

INIT_STREAMS = ("head_init", "reinit")
DATA_STREAMS = ("batch_order", "dropout", "mixout")


def stream_seed(stream: str, seed: int) -> int:
    """A 63-bit seed for one named stream; independent across names, stable across versions."""
    digest = hashlib.sha256(f"{stream}:{int(seed)}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(stream: str, seed: int, device: str = "cpu"):
    import torch

    g = torch.Generator(device=device)
    g.manual_seed(stream_seed(stream, seed))
    return g
