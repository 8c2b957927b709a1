"""Shared fixtures of the engine's test-suite.

The GLUE mirror is found through GLUE_DIR, else `../shared/data/glue` relative to the repository root.
Everything expensive (rows of a GLUE file, the tokenizer, tiny tokenised feature sets, the study's
configuration) is cached once per session so the whole suite stays fast on one CPU thread.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

REPO = Path(__file__).resolve().parents[1]
PARAMS = REPO / "params.yaml"
MODEL = "minilm-l6"


def _glue_dir() -> Path:
    env = os.environ.get("GLUE_DIR")
    return Path(env) if env else (REPO / ".." / "shared" / "data" / "glue").resolve()


@pytest.fixture(scope="session")
def glue_dir() -> Path:
    path = _glue_dir()
    assert path.is_dir(), f"GLUE folder {path} not found (set GLUE_DIR)"
    return path


@pytest.fixture(scope="session")
def glue_rows(glue_dir):
    """rows(task, split) -> the normalised rows of one GLUE file, loaded once per session."""
    from pipeline.data import load_rows

    cache: dict = {}

    def get(task: str, split: str):
        key = (task, split)
        if key not in cache:
            cache[key] = load_rows(task, split, glue_dir)[0]
        return cache[key]

    return get


@pytest.fixture(scope="session")
def study_cfg():
    from pipeline.config import load_config

    return load_config([str(PARAMS)])


# The settings every engine test starts from, whatever the study's params.yaml says: the plain
# fine-tuning recipe (debiased Adam, no Re-init, no stabiliser), made tiny.
NEUTRAL = {"bias_correction": True, "reinit_layers": 0, "reinit_pooler": False, "mixout_p": 0.0,
           "llrd_eta": 1.0, "prior_wd": 0.0, "weight_decay": 0.0, "intermediate_task": None,
           "dropout": None, "select": None, "lr": 1e-4,
           "warmup_ratio": 0.1, "max_grad_norm": 1.0, "adam_eps": 1e-8, "adam_beta1": 0.9,
           "adam_beta2": 0.999, "model": MODEL, "num_evals": 2, "batch_size": 8, "epochs": 1,
           "max_steps": None, "max_seq_length": 32, "device": "cpu", "micro_batch_tokens": 0,
           "eval_batch_tokens": 4096, "update_log_steps": 0, "amp": False, "save_checkpoint": False,
           "warmup_steps": None, "mixout_grad": "exact", "prior_wd_head": "zero", "weight_decay_impl": "decay"}


@pytest.fixture(scope="session")
def settings(study_cfg):
    """settings(task, seed=0, **overrides) -> a run's RunSettings (pipeline.config.resolve_settings on
    params.yaml, then RunSettings.from_dict), reset to the plain recipe (NEUTRAL) and made tiny: 1 epoch,
    batch 8, 2 evaluations, sequence length 32, CPU. Run seeds become init_seed/data_seed unless
    overridden; change a field with `.replace(...)`."""
    from pipeline.config import expand_conditions, resolve_settings
    from pipeline.settings import RunSettings

    conditions = expand_conditions(study_cfg["conditions"])
    condition = "debiased" if "debiased" in conditions else next(iter(conditions))

    def make(task: str, seed: int = 0, **over) -> RunSettings:
        s = RunSettings.from_dict(resolve_settings(study_cfg, task, condition, seed))
        return s.replace(**{**NEUTRAL, "init_seed": int(seed), "data_seed": int(seed), "condition": "test",
                            **over})

    return make


@pytest.fixture(scope="session")
def tokenizer():
    from pipeline.model import load_tokenizer

    return load_tokenizer(MODEL)


def split_config(**over) -> dict:
    cfg = {"split_seed": 1, "subset_seed": 0, "train_size": None, "val_source": "dev_half",
           "val_size": None, "test_size": None, "regression_bin_width": 0.0}
    cfg.update(over)
    return cfg


@pytest.fixture(scope="session")
def tiny_features(study_cfg, glue_dir):
    """tiny_features(task, train_size=32, val_size=16, test_size=40, max_len=32, val_source='dev_half')
    -> {'train'|'val'|'test': tokenised features} built by the engine's own in-process prepare stage
    (pipeline.prepare.build_run_features) on params.yaml with these split sizes. The test split is cut
    to its first `test_size` examples (not a stratified cap) to keep evaluation quick."""
    from pipeline.config import deep_merge
    from pipeline.features import head
    from pipeline.prepare import build_run_features

    cache: dict = {}

    def make(task: str, train_size: int = 32, val_size: int = 16, test_size: int = 40, max_len: int = 32,
             val_source: str = "dev_half"):
        key = (task, train_size, val_size, test_size, max_len, val_source)
        if key not in cache:
            cfg = deep_merge(study_cfg, {
                "data": {"glue_dir": str(glue_dir)}, "datasets": {},
                "splits": split_config(train_size=train_size, val_size=val_size, val_source=val_source,
                                       regression_bin_width=1.0, tasks={})})
            feats = build_run_features(cfg, task, MODEL, max_len)
            cache[key] = {"train": feats["train"], "val": feats["val"], "test": head(feats["test"], test_size)}
        return cache[key]

    return make
