"""A run's typed, frozen settings (pipeline.settings.RunSettings): its fields are exactly what the
configuration resolves for every run of every committed study, and it refuses what it cannot hold."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import ConfigError, intermediate_settings, load_config, resolve_settings, run_grid
from pipeline.settings import CHOICES, FIELD_TYPES, RunSettings

REPO = Path(__file__).resolve().parents[1]
STUDIES = {"default": ["params.yaml"], "smoke": ["params.yaml", "configs/smoke.yaml"],
           "paper": ["params.yaml", "configs/paper.yaml"]}
IDENTITY = {"task", "glue_task", "condition", "seed", "select", "selection_metric", "report_metric"}


@pytest.fixture(scope="module")
def base() -> dict:
    return resolve_settings(load_config([str(REPO / "params.yaml")]), "rte", "debiased", 0)


def test_fields_are_the_train_keys_and_the_resolved_identity():
    train_keys = set(yaml.safe_load((REPO / "params.yaml").read_text())["train"])
    fields = [f.name for f in dataclasses.fields(RunSettings)]
    assert set(fields) == train_keys | IDENTITY | {"selected"}
    assert [f.name for f in dataclasses.fields(RunSettings) if f.default is not dataclasses.MISSING] == ["selected"]


@pytest.mark.parametrize("study", list(STUDIES))
def test_every_resolved_run_of_every_study_is_a_run_settings(study):
    """Every run of the grid (and every intermediate-task run) goes through from_dict unchanged, so the
    field list and the resolved keys cannot drift apart."""
    cfg = load_config([str(REPO / p) for p in STUDIES[study]])
    grid = run_grid(cfg)
    assert grid
    intermediate = set()
    for task, condition, seed in grid:
        d = resolve_settings(cfg, task, condition, seed)
        s = RunSettings.from_dict(d)
        assert s.to_dict() == {**d, "selected": None}
        if d["intermediate_task"]:
            intermediate.add((d["intermediate_task"], seed))
    for task, seed in sorted(intermediate):
        d = intermediate_settings(cfg, task, seed)
        assert RunSettings.from_dict(d).to_dict() == {**d, "selected": None}


def test_to_dict_round_trip_and_replace(base):
    s = RunSettings.from_dict(base)
    assert RunSettings.from_dict(s.to_dict()) == s
    assert type(s.to_dict()) is dict and s.to_dict()["selected"] is None
    t = s.replace(lr=3, reinit_layers=2, selected="reinit_sweep-L2")
    assert t.lr == 3.0 and isinstance(t.lr, float)  # an int is accepted for a float, and converted
    assert (t.reinit_layers, t.selected, s.reinit_layers, s.selected) == (2, "reinit_sweep-L2", 0, None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.lr = 1.0
    assert hash(s) == hash(RunSettings.from_dict(base))  # usable as a cache key


def _messages(exc_info) -> list[str]:
    return exc_info.value.errors


def test_missing_and_unknown_keys_are_named(base):
    d = dict(base)
    del d["lr"]
    d["learning_rate"] = 1e-4
    d["warmup_ration"] = 0.1
    with pytest.raises(ConfigError) as e:
        RunSettings.from_dict(d)
    msgs = _messages(e)
    assert "settings.lr: missing" in msgs
    assert any(m.startswith("settings.warmup_ration: unknown key (did you mean 'warmup_ratio'?)") for m in msgs)
    assert any(m.startswith("settings.learning_rate: unknown key") for m in msgs)
    assert len(msgs) == 3
    assert RunSettings.from_dict({k: v for k, v in base.items() if k != "selected"}).selected is None
    with pytest.raises(ConfigError, match="must be a mapping"):
        RunSettings.from_dict([("lr", 1.0)])
    with pytest.raises(ConfigError, match=r"settings\.lerning_rate: unknown key"):
        RunSettings.from_dict(base).replace(lerning_rate=1.0)


@pytest.mark.parametrize("key,value,expected", [
    ("batch_size", True, "must be an integer, got True"),     # bool is not int
    ("batch_size", 16.0, "must be an integer, got 16.0"),
    ("epochs", "3", "must be an integer"),
    ("lr", "1e-4", "must be a number"),
    ("lr", False, "must be a number"),
    ("lr", math.nan, "must be a finite number"),
    ("adam_eps", math.inf, "must be a finite number"),
    ("lr", None, "null is not allowed"),
    ("bias_correction", 1, "must be true or false, got 1"),
    ("bias_correction", "false", "must be true or false"),
    ("max_steps", 10.5, "must be an integer or null"),
    ("dropout", "0.1", "must be a number or null"),
    ("model", "", "must be a non-empty string"),
    ("model", 7, "must be a non-empty string"),
    ("select", 3, "must be a non-empty string"),
    ("init_seed", None, "null is not allowed"),
    ("warmup_steps", 12.0, "must be an integer or null"),
    ("warmup_steps", -1, "must be at least 0"),
    ("mixout_grad", "autograd", "must be one of exact, official"),
])
def test_wrong_types_are_named(base, key, value, expected):
    with pytest.raises(ConfigError) as e:
        RunSettings.from_dict({**base, key: value})
    assert len(_messages(e)) == 1 and _messages(e)[0].startswith(f"settings.{key}: ")
    assert expected in _messages(e)[0]
    with pytest.raises(ConfigError, match=f"settings.{key}: "):  # replace() checks the same way
        RunSettings.from_dict(base).replace(**{key: value})


def test_nullable_fields_take_null(base):
    s = RunSettings.from_dict({**base, "max_steps": None, "dropout": None, "intermediate_task": None, "select": None})
    assert (s.max_steps, s.dropout, s.intermediate_task, s.select) == (None, None, None, None)
    assert RunSettings.from_dict({**base, "dropout": 0}).dropout == 0.0
    nullable = {k for k, (_, null) in FIELD_TYPES.items() if null}
    assert nullable == {"max_steps", "dropout", "intermediate_task", "select", "selected", "warmup_steps"}
    assert RunSettings.from_dict({**base, "warmup_steps": None}).warmup_steps is None
    assert RunSettings.from_dict({**base, "warmup_steps": 0}).warmup_steps == 0


def test_official_code_switches_are_enums(base):
    """The official code's behaviours (paper-details.md 6.6, 6.8) are named choices, nothing else."""
    assert CHOICES == {"mixout_grad": ("exact", "official"), "prior_wd_head": ("zero", "initial"),
                       "weight_decay_impl": ("decay", "official_noop")}
    for key, choices in CHOICES.items():
        for value in choices:
            assert getattr(RunSettings.from_dict({**base, key: value}), key) == value
        for wrong in ("Official", "", None, 1, True):
            with pytest.raises(ConfigError, match=f"settings.{key}: ") as e:
                RunSettings.from_dict({**base, key: wrong})
            assert len(_messages(e)) == 1
        with pytest.raises(ConfigError, match=f"must be one of {', '.join(choices)}"):
            RunSettings.from_dict(base).replace(**{key: "paper"})
    # params.yaml runs the paper's stated method, configs/paper.yaml the official code (plain WD stays real)
    assert {k: base[k] for k in CHOICES} == {"mixout_grad": "exact", "prior_wd_head": "zero",
                                             "weight_decay_impl": "decay"}
    paper = resolve_settings(load_config([str(REPO / p) for p in STUDIES["paper"]]), "rte", "debiased", 0)
    assert {k: paper[k] for k in CHOICES} == {"mixout_grad": "official", "prior_wd_head": "initial",
                                              "weight_decay_impl": "decay"}


def test_settings_and_architecture_are_import_light():
    code = ("import sys; import pipeline.settings, pipeline.architecture; "
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]; "
            "pipeline.architecture.local_model_config('minilm-l6'); "
            "pipeline.architecture.local_model_config('someone/some-model'); "
            "heavy += [m for m in ('torch', 'transformers') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
