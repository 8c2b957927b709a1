"""configs/paper.yaml is what people spend GPU money on: every run it resolves is checked here against
the paper's recipe, transcribed from ../shared/docs/paper-details.md into tests/paper_recipe.yaml.

Two checks over the whole paper grid (6,000+ runs):
- provenance: every resolved setting comes from configs/paper.yaml or from a key that params.yaml marks
  as shared with overlays (`shared_with_overlays`), so a laptop calibration in params.yaml can never leak
  into a paper run (it did: CoLA trained at the laptop's 1e-4 instead of 2e-5);
- conformance: each run's settings equal its row of the recipe table (model x task x condition family:
  lr, batch, warm-up, epochs or steps, length, evaluations, seeds, sweep values).
A mismatch fails naming the run and the key.
"""
from __future__ import annotations

import copy
import math
from collections import defaultdict
from pathlib import Path

import pytest
import yaml

from pipeline.config import (deep_merge, expand_conditions, key_path, load_config, resolve_settings, run_grid,
                             split_settings, intermediate_settings)
from pipeline.tasks import TRAIN_ROWS

REPO = Path(__file__).resolve().parent.parent
PARAMS = yaml.safe_load((REPO / "params.yaml").read_text())
PAPER = yaml.safe_load((REPO / "configs" / "paper.yaml").read_text())
RECIPE = yaml.safe_load((REPO / "tests" / "paper_recipe.yaml").read_text())


def _poisoned(node, path=()):
    """params.yaml with every value an overlay must not inherit replaced by a marker naming its key."""
    here = key_path(path) if path else ""
    shared = PARAMS["shared_with_overlays"]
    if here and any(here == s or here.startswith(s + ".") for s in shared):
        return copy.deepcopy(node)
    if isinstance(node, dict):  # an empty mapping has nothing to inherit
        return {k: _poisoned(v, path + (k,)) for k, v in node.items()}
    return f"<params.yaml:{here}>"


@pytest.fixture(scope="module")
def paper_cfg():
    return load_config([REPO / "params.yaml", REPO / "configs" / "paper.yaml"])


def test_every_paper_setting_comes_from_paper_yaml_or_a_shared_key():
    cfg = deep_merge(_poisoned(PARAMS), PAPER)
    leaks = defaultdict(set)
    for t, c, seed in run_grid(cfg):
        s = resolve_settings(cfg, t, c, seed)
        for k, v in s.items():
            if isinstance(v, str) and v.startswith("<params.yaml:"):
                leaks[(k, v)].add(f"{t}/{c}")
        for k, v in split_settings(cfg, t).items():
            if isinstance(v, str) and v.startswith("<params.yaml:"):
                leaks[(f"splits.{k}", v)].add(t)
        if s["intermediate_task"]:
            for k, v in intermediate_settings(cfg, s["intermediate_task"], seed).items():
                if isinstance(v, str) and v.startswith("<params.yaml:"):
                    leaks[(f"intermediate.{k}", v)].add(s["intermediate_task"])
    assert not leaks, "\n".join(f"{k} = {v} in {sorted(runs)[:4]} (+{max(0, len(runs) - 4)} more)"
                                for (k, v), runs in sorted(leaks.items()))


def _kind(dataset: str) -> str:
    for kind in ("small", "1k_dev_halves", "1k_train_val", "full"):
        if dataset in RECIPE["datasets"][kind]:
            return kind
    raise AssertionError(f"{dataset}: not a dataset of the paper")


def _seed_count(row: dict, dataset: str, glue: str):
    seeds = row["seeds"]
    kind = _kind(dataset)
    if kind == "small":
        return seeds.get(glue, seeds.get("small"))
    if kind == "full":
        return seeds.get(glue)
    return seeds.get("1k")


def _longer_values(dataset: str, glue: str) -> list:
    three = RECIPE["three_epoch_steps"]["1k" if _kind(dataset).startswith("1k") else glue]
    return [v for v in RECIPE["longer_grid"] if v > three]


def _expected(family: str, glue: str) -> dict:
    row = RECIPE["families"][family]
    exp = dict(RECIPE["bert"])
    if "model" in row:
        m = RECIPE["models"][row["model"]]
        exp["model"] = m["model"]
        exp.update(m[glue])
    exp.update(row.get("settings", {}))
    return exp


def test_every_paper_run_follows_the_recipe(paper_cfg):
    expanded = expand_conditions(paper_cfg["conditions"])
    problems, seeds, members = [], defaultdict(set), defaultdict(set)
    for t, c, seed in run_grid(paper_cfg):
        s = resolve_settings(paper_cfg, t, c, seed)
        fam = expanded[c].get("family", c)
        assert fam in RECIPE["families"], f"{t}/{c}: condition family {fam!r} is not in the paper's recipe"
        row = RECIPE["families"][fam]
        glue = s["glue_task"]
        seeds[(t, c)].add(seed)
        exp = _expected(fam, glue)
        swept = row.get("sweep", {})
        for key, values in swept.items():
            allowed = _longer_values(t, glue) if values == "longer" else values
            members[(t, fam)].add(s[key])
            if s[key] not in allowed:
                problems.append(f"{t}/{c}: {key} = {s[key]!r}, the paper's grid: {allowed}")
        if row.get("select") != s["select"]:
            problems.append(f"{t}/{c}: select = {s['select']!r}, the paper: {row.get('select')!r}")
        for key, value in exp.items():
            if key in swept:
                continue
            if s[key] != value and not (isinstance(value, float) and math.isclose(s[key], value)):
                problems.append(f"{t}/{c}: {key} = {s[key]!r}, the paper's recipe: {value!r}")
    for (t, c), got in seeds.items():
        fam = expanded[c].get("family", c)
        want = _seed_count(RECIPE["families"][fam], t, paper_cfg["datasets"].get(t, {}).get("task", t))
        if len(got) != want:
            problems.append(f"{t}/{c}: {len(got)} seeds, the paper: {want}")
    for (t, fam), got in members.items():
        for key, values in RECIPE["families"][fam]["sweep"].items():
            glue = paper_cfg["datasets"].get(t, {}).get("task", t)
            allowed = _longer_values(t, glue) if values == "longer" else values
            if key != "init_seed" and len(RECIPE["families"][fam]["sweep"]) == 1 and sorted(got) != sorted(allowed):
                problems.append(f"{t}/{fam}: sweeps {sorted(got)}, the paper: {sorted(allowed)}")
    ran = {(t, expanded[c].get("family", c)) for t, c in seeds}
    for fam, row in RECIPE["families"].items():
        for t in [d for kind in RECIPE["datasets"].values() for d in kind]:
            glue = paper_cfg["datasets"].get(t, {}).get("task", t)
            if _seed_count(row, t, glue) and (t, fam) not in ran:
                problems.append(f"{t}/{fam}: the paper runs it, configs/paper.yaml does not")
    assert not problems, f"{len(problems)} settings differ from the paper:\n" + "\n".join(problems[:40])


def test_paper_splits_and_intermediate_stage(paper_cfg):
    problems = []
    for t in paper_cfg["study"]["tasks"]:
        sp = split_settings(paper_cfg, t)
        kind = _kind(t)
        exp = dict(RECIPE["splits"])
        exp.update({"small": {"train_size": None, "val_source": "dev_half", "val_size": None, "test_size": None},
                    "1k_dev_halves": {"train_size": 1000, "val_source": "dev_half", "val_size": None, "test_size": None},
                    "1k_train_val": {"train_size": 1000, "val_source": "train", "val_size": 1000, "test_size": None},
                    "full": {"train_size": None, "val_source": "dev_half", "val_size": None,
                             "test_size": None}}[kind])
        problems += [f"{t}: splits.{k} = {sp[k]!r}, the paper: {v!r}" for k, v in exp.items() if sp[k] != v]
    inter = RECIPE["intermediate"]
    s = intermediate_settings(paper_cfg, inter["task"], 0)
    problems += [f"intermediate/{inter['task']}: {k} = {s[k]!r}, the paper: {v!r}"
                 for k, v in inter.items() if k != "task" and s[k] != v]
    assert s["model"] == RECIPE["bert"]["model"] and s["max_seq_length"] == 128
    assert not problems, "\n".join(problems)


def test_the_recipe_table_catches_a_wrong_learning_rate(paper_cfg):
    """The check that would have caught CoLA at the laptop's 1e-4: change it back and the test fails."""
    bad = copy.deepcopy(paper_cfg)
    bad["tasks"]["cola"]["lr"] = 1.0e-4
    with pytest.raises(AssertionError, match=r"cola/debiased: lr = 0.0001, the paper's recipe: 2e-05"):
        test_every_paper_run_follows_the_recipe(bad)
