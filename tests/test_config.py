"""Configuration: one schema for params.yaml and its overlays; every error names the key path and
the allowed values; checked before any job runs."""
from __future__ import annotations

import copy
import subprocess
from pathlib import Path

import pytest
import yaml

from pipeline.config import (canonical, deep_merge, expand_conditions, load_config, resolve_settings, run_grid,
                             sweep_families)

REPO = Path(__file__).resolve().parent.parent
BASE = yaml.safe_load((REPO / "params.yaml").read_text())


def _walk(node, path=()):
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def test_schema_requires_every_key_params_sets_and_declares_no_defaults():
    """Every default lives in params.yaml: the schema requires each key params.yaml sets in a section of
    fixed keys, and never supplies a value itself."""
    from pipeline.config import schema

    s = schema()
    assert not [p for p, node in _walk(s) if isinstance(node, dict) and "default" in node]

    def resolve(node):
        while "$ref" in node:  # "#/$defs/a/properties/b" -> s["$defs"]["a"]["properties"]["b"]
            target = s
            for part in node["$ref"].split("/")[1:]:
                target = target[part]
            node = target
        return node

    def check(value, node, path):
        node = resolve(node)
        if not isinstance(value, dict) or "properties" not in node:
            if isinstance(value, dict) and isinstance(node.get("additionalProperties"), dict):
                for k, v in value.items():  # a mapping of user-chosen names (tasks, conditions, ...)
                    check(v, node["additionalProperties"], path + (k,))
            return
        missing = set(value) - set(node["required"]) if "required" in node else set()  # overrides: none required
        assert not missing, f"{'.'.join(map(str, path)) or 'config'}: params.yaml sets {missing} but the schema does not require them"
        for k, v in value.items():
            check(v, node["properties"][k], path + (k,))

    check(BASE, s, ())


def test_run_setting_keys_are_the_train_section():
    from pipeline.config import run_setting_keys, sweep_tags

    assert set(run_setting_keys()) == set(BASE["train"])
    assert set(sweep_tags()) <= set(run_setting_keys())
    assert len(set(sweep_tags().values())) == len(sweep_tags())  # member names are unambiguous


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
