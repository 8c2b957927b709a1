"""Selection on validation (pipeline/select.py and the `select` command) on constructed records."""
from __future__ import annotations

import json
import math
import random
from argparse import Namespace

import pytest

from pipeline.commands_analysis import cmd_select
from pipeline.select import choose, no_skill_score

CANDIDATES = [{"name": f"sweep-L{k}", "overrides": {"reinit_layers": k}} for k in (1, 2, 3)]


def test_argmax_of_the_mean_validation_score():
    out = choose([{**CANDIDATES[0], "val": [0.60, 0.70]}, {**CANDIDATES[1], "val": [0.66, 0.70]},
                  {**CANDIDATES[2], "val": [0.50, 0.90]}])
    assert out["chosen"] == "sweep-L3" and out["overrides"] == {"reinit_layers": 3}  # mean 0.70 > 0.68 > 0.65
    means = [c["val_mean"] for c in out["candidates"]]
    assert means == pytest.approx([0.65, 0.68, 0.70])


def test_ties_go_to_the_first_listed_and_an_unscorable_candidate_is_never_chosen():
    out = choose([{**CANDIDATES[0], "val": [0.7, 0.7]}, {**CANDIDATES[1], "val": [0.6, 0.8]},
                  {**CANDIDATES[2], "val": [math.nan, math.nan]}])
    assert out["chosen"] == "sweep-L1"
    assert out["candidates"][2]["n"] == 2 and out["candidates"][2]["n_nan"] == 2
    assert out["candidates"][2]["val_mean"] is None
    with pytest.raises(ValueError, match="no candidate"):
        choose([{**CANDIDATES[0], "val": [math.nan]}])


def test_an_undefined_correlation_counts_as_no_skill_and_is_not_dropped():
    """A collapsed run (constant predictions: Spearman undefined) scores 0. Dropping it would let the
    candidate whose runs collapse win on the runs that did not: L3 here (mean 0.5 over one run)."""
    cands = [{**CANDIDATES[0], "val": [0.3, 0.35]}, {**CANDIDATES[2], "val": [0.5, None]}]
    out = choose([{**c, "metric": "spearman"} for c in cands])
    assert out["chosen"] == "sweep-L1"
    l3 = out["candidates"][1]
    assert (l3["n"], l3["n_undefined"], l3["n_nan"]) == (2, 1, 0) and l3["val_mean"] == pytest.approx(0.25)
    assert no_skill_score("mcc", math.nan) == 0.0 and math.isnan(no_skill_score("accuracy", None))


def _record(cond, seed, val, test):
    return {"task": "sts-b", "condition": cond, "seed": seed, "selection_metric": "spearman",
            "val_best": {"spearman": val}, "test_best": {"spearman": test}, "test_last": {"spearman": test}}


def test_select_command_reads_validation_only(tmp_path):
    """Shuffling the test metrics across records changes no choice."""
    rng = random.Random(0)
    vals = {"sweep-L1": [0.2, 0.3], "sweep-L2": [0.5, 0.4], "sweep-L3": [0.45, 0.44]}
    tests = [rng.random() for _ in range(6)]
    outs = []
    for trial in range(3):
        rng.shuffle(tests)
        paths, i = [], 0
        for cond, vs in vals.items():
            for seed, v in zip((1000, 1001), vs):
                p = tmp_path / f"t{trial}-{cond}-{seed}.json"
                p.write_text(json.dumps(_record(cond, seed, v, tests[i])))
                paths.append(str(p))
                i += 1
        out = tmp_path / f"sel{trial}.json"
        cmd_select(Namespace(candidates=json.dumps(CANDIDATES), task="sts-b", family="sweep", records=paths,
                             out=str(out)))
        outs.append(json.loads(out.read_text()))
    assert {o["chosen"] for o in outs} == {"sweep-L2"}
    assert outs[0]["seeds"] == [1000, 1001]
    assert all(o["candidates"] == outs[0]["candidates"] for o in outs)


def test_select_command_rejects_a_foreign_record(tmp_path):
    p = tmp_path / "r.json"
    p.write_text(json.dumps(_record("debiased", 0, 0.5, 0.5)))
    with pytest.raises(SystemExit, match="not a run of sts-b/sweep"):
        cmd_select(Namespace(candidates=json.dumps(CANDIDATES), task="sts-b", family="sweep", records=[str(p)],
                             out=str(tmp_path / "o.json")))
