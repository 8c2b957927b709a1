"""The fine-tune command: one way to give a run its settings, the in-process prepare stage, the checks
at the job's start (before any training or output), and a diverged run written as a result."""
from __future__ import annotations

import json
import logging
import math

import pandas as pd
import pytest
import torch

from pipeline import cli
from pipeline.config import ConfigError, canonical, load_config, resolve_settings
from pipeline.runner import apply_selection, settings_from_args
from pipeline.settings import RunSettings

from conftest import PARAMS

TINY = """
study: {name: tiny}
splits: {train_size: 32, val_size: 16, test_size: 40}
train: {batch_size: 8, epochs: 1, num_evals: 2, max_seq_length: 32, device: cpu, save_checkpoint: true,
        update_log_steps: 2}
tasks: {rte: {lr: 1.0e-4, epochs: 1}}
"""


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory, glue_dir):
    """params.yaml plus a tiny overlay (32 training examples, 4 steps) reading the local GLUE mirror."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    path.write_text(TINY + f"data: {{glue_dir: {json.dumps(str(glue_dir))}}}\n")
    return [str(PARAMS), str(path)]


def finetune_args(*argv):
    return cli.parser().parse_args(["finetune", *argv, "--out", "unused"])


def fail(argv, capsys) -> str:
    """Run the command line; it must exit with status 2 and one error; returns the message."""
    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    return capsys.readouterr().err


# ---- one way to give a run its settings ------------------------------------------------------------

def test_settings_json_and_config_give_the_same_run_settings(tiny_study):
    resolved = resolve_settings(load_config(tiny_study), "rte", "bertadam", 3)
    by_config = settings_from_args(finetune_args("--config", *tiny_study, "--task", "rte",
                                                 "--condition", "bertadam", "--seed", "3"))
    by_json = settings_from_args(finetune_args("--settings", canonical(resolved)))
    assert isinstance(by_config, RunSettings)
    assert by_config == by_json == RunSettings.from_dict(resolved)
    assert by_config.bias_correction is False and by_config.seed == 3


@pytest.mark.parametrize("argv,expected", [
    ([], "finetune needs --settings JSON, or --config with --task, --condition and --seed"),
    (["--config", str(PARAMS), "--task", "rte"], "missing: --condition, --seed"),
    (["--settings", "{not json"], "--settings: not valid JSON"),
    (["--settings", "{}", "--task", "rte"], "--task cannot be combined with --settings"),
    (["--settings", '{"lr": 0.1}'], "settings.model: missing"),
])
def test_settings_arguments_refused(argv, expected):
    with pytest.raises(ConfigError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        settings_from_args(finetune_args(*argv))


def test_unknown_setting_in_json_is_named(tiny_study):
    d = {**resolve_settings(load_config(tiny_study), "rte", "debiased", 0), "lr_warmup": 0.1}
    with pytest.raises(ConfigError, match=r"settings\.lr_warmup: unknown key"):
        settings_from_args(finetune_args("--settings", json.dumps(d)))


def test_save_checkpoint_is_a_setting_not_a_flag(capsys):
    with pytest.raises(SystemExit):
        cli.parser().parse_args(["finetune", "--settings", "{}", "--save-checkpoint", "--out", "x"])
    assert "unrecognized arguments: --save-checkpoint" in capsys.readouterr().err


def test_every_option_has_help_and_the_description_says_how_to_use_it():
    p = cli.parser()
    assert "python -m pipeline finetune --config params.yaml" in p.description
    assert "python -m pipeline validate" in p.description
    sub = next(a for a in p._actions if a.dest == "command")
    for name in ("data", "splits", "features", "finetune", "validate"):
        q = sub.choices[name]
        assert q.description, name
        for action in q._actions:
            assert action.help and action.help.strip(), (name, action.dest)
    from pipeline.config import cmd_validate

    assert sub.choices["validate"].get_default("fn") is cmd_validate


def test_apply_selection(tmp_path, tiny_study):
    s = RunSettings.from_dict(resolve_settings(load_config(tiny_study), "sts-b", "reinit", 0))
    assert (s.select, s.reinit_layers, s.selected) == ("reinit_sweep", 0, None)
    path = tmp_path / "sel.json"
    path.write_text(json.dumps({"task": "sts-b", "family": "reinit_sweep", "chosen": "reinit_sweep-L2",
                                "overrides": {"reinit_layers": 2, "reinit_pooler": True}}))
    t = apply_selection(s, path)
    assert (t.reinit_layers, t.reinit_pooler, t.selected, t.condition) == (2, True, "reinit_sweep-L2", "reinit")
    with pytest.raises(ConfigError, match="pass --selection FILE"):
        apply_selection(s, None)
    path.write_text(json.dumps({"task": "rte", "family": "reinit_sweep", "chosen": "x", "overrides": {}}))
    with pytest.raises(ConfigError, match="selection of rte/reinit_sweep, not sts-b/reinit_sweep"):
        apply_selection(s, path)


# ---- the in-process prepare stage is the stages' -----------------------------------------------------

def test_build_run_features_equals_the_data_splits_and_features_stages(tmp_path, tiny_study, glue_dir):
    from pipeline.config import split_settings
    from pipeline.features import load_features
    from pipeline.prepare import build_run_features

    cfg = load_config(tiny_study)
    cli.main(["data", "--task", "rte", "--glue-dir", str(glue_dir), "--out", str(tmp_path / "data")])
    cli.main(["splits", "--task", "rte", "--data", str(tmp_path / "data"),
              "--settings", canonical(split_settings(cfg, "rte")), "--out", str(tmp_path / "splits")])
    cli.main(["features", "--task", "rte", "--splits", str(tmp_path / "splits"), "--model", "minilm-l6",
              "--max-seq-length", "32", "--out", str(tmp_path / "f.pt")])
    staged = load_features(tmp_path / "f.pt")
    built = build_run_features(cfg, "rte", "minilm-l6", 32)
    assert set(staged) - set(built) == {"split_sha256"}
    for split in ("train", "val", "test"):
        assert staged[split].keys() == built[split].keys()
        for k, v in staged[split].items():
            assert torch.equal(v, built[split][k]), (split, k)
    assert [len(built[s]["labels"]) for s in ("train", "val", "test")] == [32, 16, 40]


# ---- checks at the job's start, before any training or output -----------------------------------------

@pytest.mark.parametrize("change,expected", [
    ({"reinit_layers": 8}, "train.reinit_layers: 8, but minilm-l6 has 6 layers"),
    ({"max_seq_length": 600}, "train.max_seq_length: 600, but minilm-l6 takes at most 512 tokens"),
])
def test_model_checks_at_the_job_start(tmp_path, capsys, tiny_study, change, expected):
    s = {**resolve_settings(load_config(tiny_study), "rte", "debiased", 0), **change}
    # no --features and no --config: had the check come later, the error would be about the features
    err = fail(["finetune", "--settings", json.dumps(s), "--out", str(tmp_path / "out")], capsys)
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_a_config_error(tmp_path, capsys, tiny_study):
    s = {**resolve_settings(load_config(tiny_study), "rte", "debiased", 0), "device": "cuda"}
    err = fail(["finetune", "--settings", json.dumps(s), "--out", str(tmp_path / "out")], capsys)
    assert "train.device: 'cuda', but CUDA is not available" in err
    assert not (tmp_path / "out").exists()


# ---- complete runs through the command line ----------------------------------------------------------

def test_run_from_the_configuration_at_a_terminal(tmp_path, tiny_study):
    """--config/--task/--condition/--seed, features built in-process, the checkpoint saved because the
    setting save_checkpoint is true."""
    out = tmp_path / "run"
    cli.main(["finetune", "--config", *tiny_study, "--task", "rte", "--condition", "debiased", "--seed", "0",
              "--out", str(out)])
    rec = json.loads((out / "record.json").read_text())
    assert rec["settings"] == {**resolve_settings(load_config(tiny_study), "rte", "debiased", 0), "selected": None}
    assert (rec["diverged"], rec["diverged_step"]) == (False, None)
    assert rec["inputs"]["features"] is None and rec["total_steps"] == 4 == len(pd.read_csv(out / "curve.csv"))
    assert (out / "model.safetensors").stat().st_size > 0


def test_diverged_run_is_a_complete_record(tmp_path, caplog, tiny_features, tiny_study):
    """An absurd learning rate: the loss is NaN at step 2, training stops there without updating, and
    the run still writes every file, its record marked diverged, evaluated at the weights it stopped with."""
    features = tmp_path / "features.pt"
    torch.save(tiny_features("rte"), features)
    s = {**resolve_settings(load_config(tiny_study), "rte", "bertadam", 0), "lr": 1.0e6, "save_checkpoint": False}
    out = tmp_path / "run"
    caplog.set_level(logging.INFO)
    cli.main(["finetune", "--settings", canonical(s), "--features", str(features), "--out", str(out)])
    rec = json.loads((out / "record.json").read_text())
    assert (rec["diverged"], rec["diverged_step"], rec["total_steps"]) == (True, 2, 4)
    assert any("diverged at step 2" in r.getMessage() for r in caplog.records)
    curve = pd.read_csv(out / "curve.csv")
    assert curve["step"].tolist() == [1, 2]  # no step after the divergence
    assert math.isfinite(curve["train_loss"][0]) and not math.isfinite(curve["train_loss"][1])
    assert rec["eval_steps"] == [2] and rec["best_step"] == 2  # the stopping point is evaluated
    for key in ("val_best", "val_last", "test_best", "test_last", "spread_best", "spread_last"):
        assert set(rec[key]) >= ({"accuracy"} if key.startswith(("val", "test")) else set()), key
    assert rec["test_best"]["accuracy"] is not None
    assert set(pd.read_csv(out / "updates.csv")["step"]) == {1}  # the update of step 1 only
    drift = pd.read_csv(out / "drift.csv")
    assert drift["step"].max() == 2
    assert not (out / "model.safetensors").exists()
