"""A run's settings as one typed, frozen object, built once from the resolved configuration.

`RunSettings.from_dict` takes what `pipeline.config.resolve_settings` (or `intermediate_settings`)
returns, or the same dictionary as JSON on the `finetune` command line, and refuses a missing key, an
unknown key, a value of the wrong type or a non-finite number with a `pipeline.config.ConfigError`
naming the key. Every field is required (no defaults here: the configuration states every value),
except `selected`, which only the selection of a condition's candidate sets. A field annotated with
`Literal[...]` (the official code's behaviours, README "Official code") takes exactly one of its
listed strings.

Import-light (no torch), so the configuration layer and Snakemake can use it.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigError


@dataclass(frozen=True)
class RunSettings:
    # --- the recipe: one field per key of params.yaml's `train:` section
    model: str
    lr: float
    batch_size: int
    epochs: int
    max_steps: int | None
    warmup_ratio: float
    warmup_steps: int | None  # null: int(warmup_ratio x total steps); else exactly this many (Table 6 recipes)
    weight_decay: float
    prior_wd: float
    max_grad_norm: float
    adam_eps: float
    adam_beta1: float
    adam_beta2: float
    bias_correction: bool
    max_seq_length: int
    dropout: float | None
    reinit_layers: int
    reinit_pooler: bool
    mixout_p: float
    llrd_eta: float
    intermediate_task: str | None
    num_evals: int
    micro_batch_tokens: int
    eval_batch_tokens: int
    compact_embeddings: bool
    cls_only_top_layer: bool
    attn_implementation: str
    device: str
    amp: bool
    save_checkpoint: bool
    update_log_steps: int
    init_seed: int          # resolved: the run's seed unless the configuration fixes it
    data_seed: int
    # --- where the official code departs from the paper's stated method (paper-details.md 6.6, 6.8)
    mixout_grad: Literal["exact", "official"]             # Mixout's backward: autograd | grad x 0/1 mask
    prior_wd_head: Literal["zero", "initial"]             # pre-trained WD pulls the new head to 0 | its init
    weight_decay_impl: Literal["decay", "official_noop"]  # plain weight decay: real | zeroed by PriorWD
    # --- identity and evaluation (added by resolve_settings / intermediate_settings)
    task: str               # the dataset (a GLUE task or a `datasets:` name)
    glue_task: str
    condition: str
    seed: int
    select: str | None      # the sweep family this condition selects from, if any
    selection_metric: str
    report_metric: str
    # --- set by pipeline.runner.apply_selection: the chosen candidate of `select`
    selected: str | None = None

    def __post_init__(self):
        errors = []
        for f in dataclasses.fields(self):
            value, msg = _check(f.name, getattr(self, f.name))
            if msg:
                errors.append(f"settings.{f.name}: {msg}")
            elif value is not getattr(self, f.name):
                object.__setattr__(self, f.name, value)  # an int given for a float
        if errors:
            raise _error(errors)

    @classmethod
    def from_dict(cls, d: typing.Mapping) -> "RunSettings":
        """Strict: every field but `selected` must be present, nothing else may be."""
        if not isinstance(d, typing.Mapping):
            raise _error([f"settings: must be a mapping of setting names to values, got {type(d).__name__}"])
        names = [f.name for f in dataclasses.fields(cls)]
        errors = [f"settings.{k}: missing" for k in names if k not in d and k != "selected"]
        for k in d:
            if k not in FIELD_TYPES:
                close = difflib.get_close_matches(str(k), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                errors.append(f"settings.{k}: unknown key{hint}")
            else:
                msg = _check(k, d[k])[1]
                if msg:
                    errors.append(f"settings.{k}: {msg}")
        if errors:
            raise _error(errors)
        return cls(**d)

    def to_dict(self) -> dict:
        """A plain dict of every field (a run record's "settings")."""
        return dataclasses.asdict(self)

    def replace(self, **changes) -> "RunSettings":
        """A copy with some fields changed (checked like from_dict)."""
        unknown = [k for k in changes if k not in FIELD_TYPES]
        if unknown:
            raise _error([f"settings.{k}: unknown key" for k in unknown])
        return dataclasses.replace(self, **changes)


def _error(errors: list[str]):
    return ConfigError(errors)


def _allowed(hint) -> tuple[tuple, bool]:
    """(the non-None types a field accepts, whether None is accepted) from its annotation."""
    if typing.get_origin(hint) is Literal:
        return (str,), False
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = typing.get_args(hint)
        return tuple(a for a in args if a is not type(None)), type(None) in args
    return (hint,), False


_HINTS = typing.get_type_hints(RunSettings)
FIELD_TYPES = {name: _allowed(hint) for name, hint in _HINTS.items()}
CHOICES = {name: typing.get_args(hint) for name, hint in _HINTS.items() if typing.get_origin(hint) is Literal}
MINIMUM = {"warmup_steps": 0}  # the integer fields that have a lower bound
_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _check(name: str, value):
    """(the value, converted where allowed, and None) or (value, the problem)."""
    allowed, nullable = FIELD_TYPES[name]
    if value is None:
        return value, None if nullable else "must be set (null is not allowed here)"
    what = " or ".join(_TYPE_NAMES[t] for t in allowed) + (" or null" if nullable else "")
    kind = allowed[0]
    if kind is bool:
        return value, None if isinstance(value, bool) else f"must be {what}, got {value!r}"
    if isinstance(value, bool):  # bool is an int in Python, never a number here
        return value, f"must be {what}, got {value!r}"
    if kind is int:
        if not isinstance(value, int):
            return value, f"must be {what}, got {value!r}"
        low = MINIMUM.get(name)
        return value, None if low is None or value >= low else f"must be at least {low}, got {value!r}"
    if kind is float:
        if not isinstance(value, (int, float)):
            return value, f"must be {what}, got {value!r}"
        if not math.isfinite(value):
            return value, f"must be a finite number, got {value!r}"
        return (float(value) if isinstance(value, int) else value), None
    if name in CHOICES:
        choices = CHOICES[name]
        return value, None if value in choices else f"must be one of {', '.join(choices)}; got {value!r}"
    if kind is str:
        return value, None if isinstance(value, str) and value else f"must be a non-empty string, got {value!r}"
    raise TypeError(f"RunSettings.{name}: unsupported annotation {kind!r}")  # a field added wrongly


__all__ = ["RunSettings", "FIELD_TYPES", "CHOICES"]
