"""Configuration: one schema for params.yaml and its overlays; every error names the key path and
the allowed values; checked before any job runs."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import (ConfigError, canonical, deep_merge, expand_conditions, load_config,
                             resolve_settings, run_grid, sweep_families, validate)

REPO = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((REPO / "params.yaml").read_text())


def with_change(path: str, value, delete: bool = False) -> dict:
    cfg = copy.deepcopy(BASE)
    keys = path.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node[int(k)] if isinstance(node, list) else node[k]
    if delete:
        del node[keys[-1]]
    elif isinstance(node, list):
        node[int(keys[-1])] = value
    else:
        node[keys[-1]] = value
    return cfg


BAD = [
    # (description, change, expected fragments of the message)
    ("unknown task", ("study.tasks", ["sst-2", "sts-b", "rtee"]), ["study.tasks[2]", "unknown task 'rtee'", "rte"]),
    ("misspelled condition key", ("conditions.bertadam", {"bias_corection": False}),
     ["conditions.bertadam.bias_corection", "did you mean 'bias_correction'"]),
    ("unknown top-level key", ("trian", {}), ["config.trian", "did you mean 'train'"]),
    ("zero learning rate", ("train.lr", 0.0), ["train.lr", "> 0"]),
    ("negative learning rate", ("conditions.bertadam", {"lr": -1e-5}), ["conditions.bertadam.lr", "> 0"]),
    ("warm-up of 1", ("train.warmup_ratio", 1.0), ["train.warmup_ratio", "< 1"]),
    ("negative warm-up", ("train.warmup_ratio", -0.1), ["train.warmup_ratio", ">= 0"]),
    ("train_size larger than the training set", ("splits.train_size", 100000),
     ["splits.train_size", "larger than", "training set"]),
    ("table comparing a condition that does not exist", ("analysis.tables.table1.columns.reinit_3ep", "reinitt"),
     ["analysis.tables.table1.columns.reinit_3ep", "unknown condition 'reinitt'"]),
    ("comparison of a missing condition", ("analysis.comparisons.0.baseline", "bert_adam"),
     ["analysis.comparisons[0].baseline", "unknown condition 'bert_adam'"]),
    ("empty seed list", ("seeds.main", []), ["seeds.main", "non-empty"]),
    ("duplicate seeds", ("seeds.main", [0, 1, 1]), ["seeds.main", "duplicate seeds [1]"]),
    ("selection seeds overlapping report seeds", ("seeds.selection", [0, 1000]),
     ["seeds.selection", "overlap", "[0]"]),
    ("grid names an unknown condition", ("grid.0.conditions", ["debiased", "bertadm"]),
     ["grid[0].conditions", "unknown condition 'bertadm'"]),
    ("grid names an unknown seed set", ("grid.0.seeds", "optimizer"), ["grid[0].seeds", "'optimizer'"]),
    ("missing base key", ("train.adam_eps", None, True), ["train", "missing: adam_eps"]),
    ("bad boolean", ("train.bias_correction", "yes"), ["train.bias_correction", "true or false"]),
    ("mixout p of 1", ("conditions.mixout", {"mixout_p": 1.0}), ["conditions.mixout.mixout_p", "< 1"]),
    ("sweep of a non-sweepable key", ("conditions.bertadam", {"bias_correction": [True, False]}),
     ["conditions.bertadam.bias_correction", "may be swept"]),
    ("selection metric not computed", ("evaluation.selection_metric", {"mrpc": "spearman"}),
     ["evaluation.selection_metric.mrpc", "'spearman'", "accuracy"]),
    ("unknown split key", ("splits.val_sise", 10), ["splits.val_sise", "did you mean 'val_size'"]),
    ("select from a missing family", ("conditions.reinit", {"select": "reinit_swep"}),
     ["conditions.reinit.select", "'reinit_swep'"]),
    ("unknown claim direction", ("analysis.comparisons.4.expect", "smaller"),
     ["analysis.comparisons[4].expect", "'smaller'", "no_gain"]),
    ("negative equivalence margin", ("analysis.equivalence_margin", -0.01),
     ["analysis.equivalence_margin", ">= 0"]),
]


@pytest.mark.parametrize("desc,change,fragments", BAD, ids=[b[0] for b in BAD])
def test_bad_config_names_the_culprit(desc, change, fragments):
    cfg = with_change(*change)
    errors = validate(cfg)
    assert errors, desc
    text = "\n".join(errors)
    for frag in fragments:
        assert frag in text, (desc, frag, text)


def test_default_and_overlays_are_valid():
    for overlay in [[], ["configs/smoke.yaml"], ["configs/calibration.yaml"], ["configs/paper.yaml"]]:
        load_config([REPO / "params.yaml"] + [REPO / o for o in overlay])


def test_bad_config_stops_snakemake_before_any_job(tmp_path):
    overlay = tmp_path / "bad.yaml"
    overlay.write_text("study: {name: badstudy}\ntrain: {lr: -1.0}\n")
    proc = subprocess.run([str(REPO / ".venv" / "bin" / "snakemake"), "-n", "--cores", "1",
                           "--configfile", str(overlay)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode != 0
    assert "train.lr" in proc.stdout + proc.stderr
    assert not (REPO / "results" / "badstudy").exists()


def test_overlay_deep_merge_replaces_lists_and_merges_maps():
    merged = deep_merge({"a": {"x": 1, "y": [1, 2]}, "b": 1}, {"a": {"y": [3]}, "c": 2})
    assert merged == {"a": {"x": 1, "y": [3]}, "b": 1, "c": 2}


def test_sweeps_expand_into_named_members():
    conds = {"reinit_sweep": {"reinit_layers": [0, 2], "reinit_pooler": True},
             "llrd": {"lr": [2e-5, 1e-4], "llrd_eta": [0.9, 0.95]}, "debiased": {}}
    exp = expand_conditions(conds)
    assert exp["reinit_sweep-L0"] == {"reinit_layers": 0, "reinit_pooler": True, "family": "reinit_sweep"}
    assert "reinit_sweep-L2" in exp and "debiased" in exp
    assert sorted(sweep_families(conds)["llrd"]) == sorted(
        ["llrd-lr2e-05-eta0.9", "llrd-lr2e-05-eta0.95", "llrd-lr0.0001-eta0.9", "llrd-lr0.0001-eta0.95"])


def test_resolution_order_and_canonical_string():
    cfg = load_config([REPO / "params.yaml"])
    s = resolve_settings(cfg, "sts-b", "bertadam", 3)
    assert s["bias_correction"] is False
    assert s["lr"] == cfg["tasks"]["sts-b"]["lr"]          # task override beats base
    assert s["init_seed"] == s["data_seed"] == 3
    assert canonical(s) == canonical(dict(reversed(list(s.items()))))  # key order never matters
    grid = run_grid(cfg)
    assert len(grid) == len(set(grid))


def test_editing_one_condition_changes_only_its_settings():
    cfg = load_config([REPO / "params.yaml"])
    before = {g: canonical(resolve_settings(cfg, *g)) for g in run_grid(cfg)}
    cfg2 = copy.deepcopy(cfg)
    cfg2["conditions"]["bertadam"]["lr"] = 5e-4
    after = {g: canonical(resolve_settings(cfg2, *g)) for g in run_grid(cfg2)}
    changed = {g[1] for g in before if before[g] != after[g]}
    assert changed == {"bertadam"}
