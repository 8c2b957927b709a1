"""End to end: the smoke study through DVC and Snakemake in two throw-away copies of the project.

In both copies the smoke overlay is made the default study (params.yaml), so both write results/ with
the same configuration: one copy reproduces it with `dvc repro`, the other with plain `snakemake`.
Every test shares these two runs; comparing them proves determinism across the workflow.
"""
from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from workflow_helpers import REPO, VENV, copy_project, dvc, env, finetune_jobs, git, load_json, snakemake

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def dvc_study(tmp_path_factory):
    """A copy of the project whose default study is the smoke study, reproduced with `dvc repro`."""
    root = copy_project(tmp_path_factory.mktemp("dvc") / "project", smoke_as_default=True)
    proc = dvc(root, "repro")
    return {"root": root, "repro": proc}


@pytest.fixture(scope="session")
def snakemake_study(tmp_path_factory):
    """A second copy, the same smoke study run with plain Snakemake."""
    root = copy_project(tmp_path_factory.mktemp("smk") / "project", smoke_as_default=True)
    proc = snakemake(root)
    return {"root": root, "results": root / "results", "run": proc}


def smoke_config() -> dict:
    from pipeline.config import deep_merge

    return deep_merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                      yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text()))


def test_smoke_outputs_exist_and_are_sensible(snakemake_study):
    from pipeline.config import run_grid

    res = snakemake_study["results"]
    grid = run_grid(smoke_config())
    for task, cond, seed in grid:
        d = res / "runs" / task / cond / f"seed{seed}"
        rec = load_json(d / "record.json")
        assert rec["task"] == task and rec["condition"] == cond and rec["seed"] == seed
        for split in ("test_best", "test_last", "val_best"):
            for name, v in rec[split].items():
                assert v is None or -1.0 <= v <= 1.0, (d, split, name, v)
        curve = pd.read_csv(d / "curve.csv")
        assert list(curve["step"]) == list(range(1, rec["total_steps"] + 1))
        assert curve["train_loss"].notna().all()
        drift = pd.read_csv(d / "drift.csv")
        assert (drift.loc[drift["step"] == 0, "l2"] == 0).all()
    runs = pd.read_csv(res / "summary" / "runs.csv")
    assert len(runs) == len(grid)
    metrics = load_json(res / "metrics.json")
    counts = runs.groupby(["task", "condition"]).size()
    for (task, cond), n in counts.items():
        assert metrics[task][cond]["n_runs"] == n
        m = metrics[task][cond]["test_best_mean"]
        assert m is None or -1.0 <= m <= 1.0


def test_selected_conditions_use_the_chosen_value(snakemake_study):
    res = snakemake_study["results"]
    for sel_file in (res / "selection").glob("*/*.json"):
        sel = load_json(sel_file)
        task = sel_file.parent.name
        for cond in ("reinit", "reinit_longer"):
            for rec_file in (res / "runs" / task / cond).glob("seed*/record.json"):
                rec = load_json(rec_file)
                assert rec["settings"]["selected"] == sel["chosen"]
                for k, v in sel["overrides"].items():
                    assert rec["settings"][k] == v


def test_second_run_does_nothing(snakemake_study):
    proc = snakemake(snakemake_study["root"], "-n")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_editing_analysis_code_reruns_no_finetune(snakemake_study):
    root = snakemake_study["root"]
    for module in ("pipeline/stats.py", "pipeline/figures.py", "pipeline/aggregate.py"):
        path = root / module
        if not path.exists():
            continue
        original, stat = path.read_text(), path.stat()
        try:
            path.write_text(original + "\n# edited\n")
            proc = snakemake(root, "-n")
            assert "finetune" not in proc.stdout.split("Job stats")[-1], module
            assert finetune_jobs(proc.stdout) == [], module
        finally:
            path.write_text(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("module", ["pipeline/drift.py", "pipeline/model.py"])
def test_editing_any_engine_module_reruns_every_finetune(snakemake_study, module):
    """Jobs list one file named after the engine modules' digest (rules/common.smk): editing any module
    plans every fine-tune and intermediate job again, even when the newest other module is touched
    after it (a newer file whose content Snakemake has seen reruns nothing, so depending on "the newest
    module" would miss the edit); touching every module reruns nothing."""
    root = snakemake_study["root"]
    engine = sorted((root / "pipeline").glob("*.py"))
    stats = {p: p.stat() for p in engine}
    path = root / module
    original = path.read_text()
    n_runs = len(list((root / "results" / "runs").glob("*/*/seed*/record.json")))
    stamps = list((root / "results" / "engine").glob("*.sha256"))
    assert len(stamps) == 1  # one engine version ran
    modules = [root / line.split()[1] for line in stamps[0].read_text().splitlines()]
    listed = re.search(r"ENGINE = sorted\(.*?\(\s*(.*?)\)\)", (root / "rules" / "common.smk").read_text(), re.S)
    assert path in modules and len(modules) == len(re.findall(r'"(\w+)"', listed.group(1)))  # every engine module
    newest_other = max((p for p in modules if p != path), key=lambda p: stats[p].st_mtime_ns)
    try:
        path.write_text(original + "\n# edited\n")
        os.utime(newest_other)  # the newest other module newer still, its content unchanged
        proc = snakemake(root, "-n")
        assert len(finetune_jobs(proc.stdout)) == n_runs > 0, module
        assert re.search(r"^intermediate\s+\d+", proc.stdout, re.M), module
    finally:
        path.write_text(original)
        for p, st in stats.items():
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
        for stamp in set((root / "results" / "engine").glob("*.sha256")) - set(stamps):
            stamp.unlink()  # the edited engine's, written by the dry run
    for p in engine:
        os.utime(p)  # touched, not changed
    try:
        assert "Nothing to be done" in snakemake(root, "-n").stdout
    finally:
        for p, st in stats.items():
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_two_runs_are_identical(dvc_study, snakemake_study):
    """Determinism across the workflow: same machine, same versions -> identical numbers."""
    a, b = dvc_study["root"] / "results", snakemake_study["results"]
    ra, rb = pd.read_csv(a / "summary" / "runs.csv"), pd.read_csv(b / "summary" / "runs.csv")
    timing = ["wall_s", "train_examples_per_s"]
    pd.testing.assert_frame_equal(ra.drop(columns=timing), rb.drop(columns=timing))
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    for rel in ("summary/curves.csv", "summary/drift.csv"):
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    for rec in (b / "runs").glob("*/*/seed*/record.json"):
        other = a / rec.relative_to(b)
        ja, jb = load_json(other), load_json(rec)
        for key in ("val_best", "val_last", "test_best", "test_last", "best_step", "spread_best"):
            assert ja[key] == jb[key], (rec, key)
        for name in ("curve.csv", "drift.csv", "updates.csv"):
            assert (other.parent / name).read_bytes() == (rec.parent / name).read_bytes(), (rec, name)
    tables_a = sorted(p.relative_to(a) for p in (a / "tables").glob("*") if p.suffix in (".md", ".csv", ".tex"))
    for rel in tables_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_sigkill_mid_training_leaves_nothing_complete_and_rerun_matches(snakemake_study, tmp_path):
    """A fine-tune job killed with SIGKILL mid-training leaves nothing that looks complete; rerunning it
    gives exactly the result of an uninterrupted run."""
    from pipeline.config import canonical, model_tag, resolve_settings

    root = snakemake_study["root"]
    s = resolve_settings(smoke_config(), "sts-b", "longer", 0)
    s["epochs"] = 12  # 48 steps: the kill at the first progress line (step 4) lands well before the end
    feats = snakemake_study["results"] / "features" / "sts-b" / f"{model_tag(s['model'], s['max_seq_length'])}.pt"

    def cmd(out):
        return [str(VENV / "bin" / "python"), "-m", "pipeline", "finetune", "--settings", canonical(s),
                "--features", str(feats), "--out", str(out)]

    killed = tmp_path / "killed"
    proc = subprocess.Popen(cmd(killed), cwd=root, env=env(), stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    for line in proc.stderr:
        if re.search(r"step \d+/48", line) or time.time() > deadline:
            break
    assert proc.poll() is None, "the job ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    leftovers = [p.name for p in killed.glob("*")] if killed.exists() else []
    complete_looking = [n for n in leftovers if not (n.startswith(".") and n.endswith(".tmp"))]
    assert complete_looking == [], leftovers  # at most a hidden temporary file, never record.json
    subprocess.run(cmd(killed), cwd=root, env=env(), check=True, capture_output=True)  # the rerun
    clean = tmp_path / "uninterrupted"
    subprocess.run(cmd(clean), cwd=root, env=env(), check=True, capture_output=True)
    a, b = load_json(killed / "record.json"), load_json(clean / "record.json")
    for key in ("val_best", "val_last", "test_best", "test_last", "best_step"):
        assert a[key] == b[key], key
    for name in ("curve.csv", "drift.csv", "updates.csv"):
        assert (killed / name).read_bytes() == (clean / name).read_bytes(), name


def test_metric_values_are_finite_or_recorded_nan(snakemake_study):
    runs = pd.read_csv(snakemake_study["results"] / "summary" / "runs.csv")
    for v in runs["test_best"]:
        assert math.isnan(v) or -1 <= v <= 1


def test_intermediate_model_trained_once_per_seed_and_used_by_target_runs(snakemake_study):
    from pipeline.provenance import sha256_file

    res = snakemake_study["results"]
    log = snakemake_study["run"].stdout + snakemake_study["run"].stderr
    assert len(re.findall(r"^\s*(?:local)?rule intermediate:", log, flags=re.M)) == 2  # seeds 0 and 1
    for seed in (0, 1):
        ckpt = res / "intermediate" / "mrpc" / f"seed{seed}" / "model.safetensors"
        rec = load_json(res / "runs" / "sts-b" / "intermediate" / f"seed{seed}" / "record.json")
        assert rec["inputs"]["init_weights_sha256"] == sha256_file(ckpt)


def test_target_run_starts_from_the_intermediate_weights():
    """Encoder weights equal the intermediate checkpoint's at step 0; the head is new."""
    import torch

    from pipeline.config import load_config, resolve_settings
    from pipeline.model import load_model
    from pipeline.settings import RunSettings
    from pipeline.tasks import task_spec
    from pipeline.train import build_model

    cfg = load_config([REPO / "params.yaml"])
    s = RunSettings.from_dict(resolve_settings(cfg, "sts-b", "intermediate", 0))
    donor = load_model(s.model, 2)
    with torch.no_grad():
        for p in donor.parameters():
            p.add_(0.01)  # an "intermediate" model distinct from the pre-trained one
    state = donor.state_dict()
    model = build_model(s, task_spec("sts-b"), init_weights=state)
    for name, p in model.named_parameters():
        if name.startswith("bert."):
            assert torch.equal(p, state[name]), name
    assert not torch.equal(model.classifier.weight[:1], state["classifier.weight"][:1])


def test_every_planned_table_and_figure_exists_and_the_paper_map_names_only_real_files(snakemake_study):
    from pipeline.analysis_cli import planned_figures, planned_tables

    res = snakemake_study["results"]
    cfg = load_json(res / "study.json")
    for name in planned_tables(cfg):
        for ext in ("md", "csv"):
            assert (res / "tables" / f"{name}.{ext}").stat().st_size > 0, (name, ext)
    for name in planned_figures(cfg):
        assert (res / "figures" / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
        assert (res / "figures" / f"{name}.csv").exists(), name
    paper_map = (res / "paper_map.md").read_text()
    named = re.findall(r"`([^`\s]+\.(?:png|csv|md|tex))`", paper_map)
    assert named, "the paper map names no file"
    missing = [f for f in named if not (res / f).exists() and not (REPO / f).exists()]
    assert missing == [], missing
    for item in ("Table 1", "Table 2", "Figure 1", "Figure 2", "Figure 9"):
        assert f"| {item} |" in paper_map, item
    report = (res / "report.html").read_text()
    for name in planned_figures(cfg):  # every figure embedded in the self-contained page
        assert re.search(f"<figure id='fig-{name}'><img alt='{name}' src=\"data:image/png;base64,", report), name
    claims = pd.read_csv(res / "tables" / "claims.csv")
    assert len(claims) >= len(cfg["analysis"]["comparisons"])


def test_figures_and_statistics_are_deterministic(dvc_study, snakemake_study):
    """Every figure's data and every statistics file agree byte for byte, except the per-run timing
    columns (wall time, examples per second), which are measurements, not results."""
    a, b = dvc_study["root"] / "results", snakemake_study["results"]
    timing = ["wall_s", "train_examples_per_s"]
    files = [f for sub in ("figures", "stats") for f in sorted((b / sub).glob("*.csv"))]
    assert len(files) > 10
    for f in files:
        other = a / f.relative_to(b)
        if f.stat().st_size and set(timing) <= set(pd.read_csv(f, nrows=0).columns):
            pd.testing.assert_frame_equal(pd.read_csv(other).drop(columns=timing), pd.read_csv(f).drop(columns=timing),
                                          check_exact=True)
        else:
            assert other.read_bytes() == f.read_bytes(), f.name


# Last: it edits params.yaml in the DVC copy and reruns, so the tests comparing the copies come first.
def test_dvc_repro_is_up_to_date_then_reruns_only_the_edited_condition(dvc_study):
    root = dvc_study["root"]
    proc = dvc(root, "status")
    assert "up to date" in proc.stdout.lower() or "Data and pipelines are up to date" in proc.stdout
    git(root, "add", "-A")
    git(root, "-c", "user.email=ci@example.org", "-c", "user.name=ci", "commit", "-qm", "repro")
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["conditions"]["bertadam"]["lr"] = 5.0e-4
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = {p: p.stat().st_mtime_ns for p in (root / "results" / "runs").glob("*/*/seed*/record.json")}
    repro = dvc(root, "repro")
    after = {p: p.stat().st_mtime_ns for p in before}
    rerun = sorted({p.parent.parent.name for p in before if after[p] != before[p]})
    assert rerun == ["bertadam"], rerun
    diff = dvc(root, "metrics", "diff", "--json")
    changed = json.loads(diff.stdout)
    keys = [k for f in changed.values() for k in f]
    assert keys and all(".bertadam." in k for k in keys), keys
    assert "bertadam" in dvc(root, "params", "diff").stdout or "lr" in dvc(root, "params", "diff").stdout
    del repro
