"""End to end: the smoke study through DVC and Snakemake in two throw-away copies of the project.

In both copies the smoke overlay is made the default study (params.yaml), so both write results/ with
the same configuration: one copy reproduces it with `dvc repro`, the other with plain `snakemake`.
Every test shares these two runs; comparing them proves determinism across the workflow.
"""
from __future__ import annotations

import contextlib
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

from workflow_helpers import (REPO, VENV, copy_project, dvc, env, finetune_jobs, git, imports_log, load_json,
                              snakemake)

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


def test_every_module_a_command_imported_is_in_its_code_stamp(dvc_study, snakemake_study):
    """Ground truth for pipeline/codedeps.py: every package module each command actually imported while
    the two studies ran (logged by pipeline/cli.py under PIPELINE_IMPORTS_LOG) is among the files of
    that command's digest, so an edit of it reruns the command's jobs."""
    from pipeline import codedeps

    by_fn = {f"pipeline.{module}.{fn}": name for name, (module, fn) in codedeps.commands().items()}
    seen: dict = {}
    for root in (dvc_study["root"], snakemake_study["root"]):
        for line in imports_log(root).read_text().splitlines():
            entry = json.loads(line)
            seen.setdefault(by_fn[entry["fn"]], set()).update(entry["modules"])
    assert {"finetune", "features", "aggregate", "analyze", "figures", "report", "select"} <= set(seen), seen
    for command, modules in seen.items():
        files = set(codedeps.command_code(command).files)
        missing = {m for m in modules if f"pipeline/{m.removeprefix('pipeline.')}.py" not in files}
        assert not missing, (command, missing)


@pytest.mark.parametrize("module", ["pipeline/drift.py", "pipeline/model.py"])
def test_editing_any_engine_module_reruns_every_finetune(snakemake_study, module):
    """Jobs list one file named after the digest of the code the fine-tune command runs
    (results/code/finetune-<digest>.sha256, rules/common.smk code_stamp): editing any module plans every
    fine-tune and intermediate job again, even when the newest other module is touched after it (a newer
    file whose content Snakemake has seen reruns nothing, so depending on "the newest module" would miss
    the edit); touching every module reruns nothing; the dry run writes no stamp."""
    root = snakemake_study["root"]
    engine = sorted((root / "pipeline").glob("*.py"))
    stats = {p: p.stat() for p in engine}
    path = root / module
    original = path.read_text()
    n_runs = len(list((root / "results" / "runs").glob("*/*/seed*/record.json")))
    stamps = list((root / "results" / "code").glob("finetune-*.sha256"))
    assert len(stamps) == 1  # one engine version ran
    modules = [root / line.split()[1].split(":")[0] for line in stamps[0].read_text().splitlines()]
    assert path in modules and root / "pipeline" / "train.py" in modules
    assert root / "pipeline" / "figures.py" not in modules and root / "pipeline" / "config.py" not in modules
    newest_other = max((p for p in modules if p != path and p.suffix == ".py"), key=lambda p: stats[p].st_mtime_ns)
    try:
        path.write_text(original + "\n# edited\n")
        os.utime(newest_other)  # the newest other module newer still, its content unchanged
        proc = snakemake(root, "-n")
        assert len(finetune_jobs(proc.stdout)) == n_runs > 0, module
        assert re.search(r"^intermediate\s+\d+", proc.stdout, re.M), module
        # without Snakemake's metadata (mtime only, as after `rm -rf .snakemake`): the new stamp, missing,
        # is requested by the target (rules/common.smk missing_code_stamps), so the edit still reruns all
        mtime = snakemake(root, "-n", "--rerun-triggers", "mtime")
        assert len(finetune_jobs(mtime.stdout)) == n_runs, module
        assert list((root / "results" / "code").glob("finetune-*.sha256")) == stamps  # planning wrote nothing
    finally:
        path.write_text(original)
        for p, st in stats.items():
            os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
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
    # runs.csv holds results only (timings are measurements: the records keep them), so its bytes agree
    assert (a / "summary" / "runs.csv").read_bytes() == (b / "summary" / "runs.csv").read_bytes()
    assert (a / "metrics.json").read_bytes() == (b / "metrics.json").read_bytes()
    assert (a / "claims_metrics.json").read_bytes() == (b / "claims_metrics.json").read_bytes()
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
    # the pictures too (drawn in two processes: strip plots' jitter comes from a seeded generator)
    pngs = sorted((b / "figures").glob("*.png"))
    assert len(pngs) > 5
    for f in pngs:
        assert (a / "figures" / f.name).read_bytes() == f.read_bytes(), f.name


def test_a_finished_run_prints_one_line_to_the_console(snakemake_study):
    """Each run's task, condition, seed, score and time reach Snakemake's console (the run's stdout); its
    progress goes to the log file only."""
    from pipeline.config import run_grid

    out = snakemake_study["run"].stdout
    done = re.findall(r"^done ([^/\s]+)/([^/\s]+)/seed(\d+): (?:DIVERGED at step \d+, )?test (\w+)=(\S+) "
                      r"\(best step \d+\), ([\d.]+) s", out, re.M)
    assert {(t, c, int(s)) for t, c, s, *_ in done} >= set(run_grid(smoke_config())), out[-3000:]
    log = (snakemake_study["results"] / "logs" / "runs" / "rte" / "debiased" / "seed0.log").read_text()
    assert "step" in log and "done rte/debiased/seed0" in log


def test_a_deleted_run_directory_is_planned_again(snakemake_study):
    """`snakemake` alone notices a run directory deleted after the aggregation: the run and everything
    after it is planned again (not "Nothing to be done" with runs.csv still counting it)."""
    root = snakemake_study["root"]
    run = root / "results" / "runs" / "rte" / "debiased" / "seed0"
    aside = root / "moved-aside-seed0"
    os.rename(run, aside)
    try:
        proc = snakemake(root, "-n")
        assert finetune_jobs(proc.stdout) == [("rte", "debiased", "0")], proc.stdout[-3000:]
        assert re.search(r"^aggregate\s+1", proc.stdout, re.M)
    finally:
        os.rename(aside, run)
    assert "Nothing to be done" in snakemake(root, "-n").stdout


def _snapshot(folder: Path) -> dict:
    """{file: (size, mtime)} and {folder: None} below `folder` (folders' own times change when the test
    moves a run aside, but a folder created by a dry run shows)."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) if p.is_file() else None for p in folder.rglob("*")}


@contextlib.contextmanager
def _read_only(folder: Path):
    """`folder` and everything below it unwritable for the duration: immutable (chattr +i) when running
    as root, whom file modes do not stop; without write permission otherwise."""
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "-R", "+i", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["chattr", "-R", "-i", str(folder)], capture_output=True)
            pytest.skip("chattr +i is not available here")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-R", "-i", str(folder)], check=True)
    else:
        modes = {p: p.stat().st_mode for p in [folder, *folder.rglob("*")]}
        for p in modes:
            p.chmod(modes[p] & ~0o222)
        try:
            yield
        finally:
            for p, m in modes.items():
                p.chmod(m)


def test_a_dry_run_writes_nothing_under_results(snakemake_study, tmp_path):
    """Planning writes nothing under results/ (the stamps of the code the jobs run are written by a job,
    never by the planning): `snakemake -n` on the finished study succeeds with results/ read-only; with jobs
    to plan (a run moved aside) it changes nothing there; a fresh copy has no results/ after its dry run.
    (With jobs to plan and results/ read-only Snakemake refuses by design: their outputs are protected.)"""
    root = snakemake_study["root"]
    before = _snapshot(root / "results")
    with _read_only(root / "results"):
        assert "Nothing to be done" in snakemake(root, "-n").stdout
    run = root / "results" / "runs" / "sts-b" / "reinit" / "seed1"
    aside = root / "moved-aside-run"
    os.rename(run, aside)
    try:
        moved = _snapshot(root / "results")
        proc = snakemake(root, "-n")
        assert finetune_jobs(proc.stdout) == [("sts-b", "reinit", "1")], proc.stdout[-3000:]
        assert _snapshot(root / "results") == moved
    finally:
        os.rename(aside, run)
    assert _snapshot(root / "results") == before
    fresh = copy_project(tmp_path / "fresh")
    proc = snakemake(fresh, "-n", "--configfile", "configs/smoke.yaml")
    assert "This was a dry-run" in proc.stdout and re.search(r"^finetune\s+\d+", proc.stdout, re.M)
    assert not (fresh / "results").exists()


def test_a_rebuilt_features_file_reruns_no_finetune(snakemake_study):
    """Deleting and rebuilding a features file gives the same bytes, and no fine-tune is planned again:
    Snakemake compares the newer file's checksum with the one recorded when the runs were made, for inputs
    up to profiles/default's max-checksum-file-size (2 GB; Snakemake's own default, 1 MB, would leave out
    any real features file: with a limit below this file's size every run of the task is planned again)."""
    root = snakemake_study["root"]
    feats = next((root / "results" / "features" / "rte").glob("*.pt"))
    old, st = feats.read_bytes(), feats.stat()
    feats.unlink()
    try:
        snakemake(root, str(feats.relative_to(root)))
        assert feats.read_bytes() == old
        proc = snakemake(root, "-n")
        assert finetune_jobs(proc.stdout) == [] and "Nothing to be done" in proc.stdout, proc.stdout[-3000:]
        small = snakemake(root, "-n", "--max-checksum-file-size", str(len(old) - 1))
        assert {t for t, _, _ in finetune_jobs(small.stdout)} == {"rte"}
    finally:
        if not feats.exists():
            feats.write_bytes(old)
        os.utime(feats, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_every_intermediate_rebuilt_elsewhere_has_the_same_bytes(snakemake_study, tmp_path):
    """Rows, splits, features, a selection, the summaries and the metrics files, rebuilt from the same
    inputs into another folder, are byte for byte the study's (so a rebuild reruns nothing after them)."""
    from pipeline.config import canonical, expand_conditions, split_settings, sweep_families

    res, cfg = snakemake_study["results"], smoke_config()
    py = [str(VENV / "bin" / "python"), "-m", "pipeline"]

    def cmd(*args):
        subprocess.run([*py, *map(str, args)], cwd=snakemake_study["root"], env=env(), check=True,
                       capture_output=True)

    def same(a: Path, b: Path):
        names = sorted(p.name for p in a.iterdir()) if a.is_dir() else [None]
        for n in names:
            x, y = (a / n, b / n) if n else (a, b)
            assert x.read_bytes() == y.read_bytes(), (x, y)

    out = tmp_path / "rebuilt"
    cmd("data", "--task", "rte", "--out", out / "data")
    same(res / "data" / "rte", out / "data")
    cmd("splits", "--task", "rte", "--data", out / "data", "--settings", canonical(split_settings(cfg, "rte")),
        "--out", out / "splits")
    same(res / "splits" / "rte", out / "splits")
    feats = next((res / "features" / "rte").glob("*.pt"))
    model, max_len = feats.stem.rsplit("-", 1)
    cmd("features", "--task", "rte", "--splits", out / "splits", "--model", model, "--max-seq-length", max_len,
        "--out", out / "features.pt")
    same(feats, out / "features.pt")
    expanded = expand_conditions(cfg["conditions"])
    members = sweep_families(cfg["conditions"])["reinit_sweep"]
    cands = [{"name": m, "overrides": {k: v for k, v in expanded[m].items() if k not in ("family", "description")}}
             for m in members]
    records = sorted(str(p) for m in members for p in (res / "runs" / "rte" / m).glob("seed*/record.json"))
    cmd("select", "--candidates", canonical(cands), "--task", "rte", "--family", "reinit_sweep", "--records",
        *records, "--out", out / "selection.json")
    same(res / "selection" / "rte" / "reinit_sweep.json", out / "selection.json")
    cmd("aggregate", "--study", res / "study.json", "--root", res, "--out", out / "summary")
    same(res / "summary", out / "summary")
    cmd("metrics", "--runs", out / "summary" / "runs.csv", "--out", out / "metrics.json")
    same(res / "metrics.json", out / "metrics.json")
    subprocess.run([str(VENV / "bin" / "python"), "-m", "pipeline.headline", "--claims",
                    str(res / "tables" / "claims.json"), "--out", str(out / "claims_metrics.json")],
                   cwd=snakemake_study["root"], env=env(), check=True)
    same(res / "claims_metrics.json", out / "claims_metrics.json")


def test_dvc_lists_the_claims_as_metrics_and_draws_the_learning_curves(dvc_study):
    """`dvc metrics show` lists every claim's verdict and effect per task (claims_metrics.json); the
    learning-curve plot draws one panel per task and one colour per condition from summary/curves.csv."""
    root = dvc_study["root"]
    shown = json.loads(dvc(root, "metrics", "show", "--json").stdout)
    data = next(iter(shown.values()))["data"]
    claims = data["results/claims_metrics.json"]["data"]
    assert claims["bias_correction"]["rte"]["verdict"] and "effect" in claims["bias_correction"]["sts-b"]
    plots = json.loads(dvc(root, "plots", "show", "--json").stdout)["data"]
    spec = plots["learning_curve"][0]["content"]
    assert spec["facet"]["field"] == "task" and spec["spec"]["encoding"]["color"]["field"] == "condition"
    values = spec["data"]["values"]
    assert {v["task"] for v in values} == {"rte", "sts-b"} and len({v["condition"] for v in values}) > 5


@pytest.fixture(scope="session")
def standard_only_study(tmp_path_factory):
    """A copy whose default study runs Standard (debiased) only on one task: no selection, no intermediate
    task, no optimiser pair."""
    from pipeline.config import deep_merge

    root = copy_project(tmp_path_factory.mktemp("std") / "project", smoke_as_default=True)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params = deep_merge(params, {"study": {"tasks": ["rte"]}})
    params["grid"] = [{"tasks": ["rte"], "conditions": ["debiased"], "seeds": "main"}]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return {"root": root, "repro": dvc(root, "repro")}


def test_dvc_repro_completes_a_grid_with_standard_only(standard_only_study):
    root = standard_only_study["root"]
    for folder in ("intermediate", "selection"):
        assert (root / "results" / folder).is_dir() and not any((root / "results" / folder).iterdir())
    assert (root / "results" / "report.html").stat().st_size > 0
    assert "up to date" in dvc(root, "status").stdout


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
    keys = list(changed.get("results/metrics.json", {}))
    assert keys and all(".bertadam." in k for k in keys), keys
    # the claims whose baseline is BERTAdam moved (claims_metrics.json: <claim>.<task>.effect ...), no other
    claims = yaml.safe_load((root / "params.yaml").read_text())["analysis"]["comparisons"]
    bertadam = {c["name"] for c in claims if "bertadam" in (c["baseline"], c["treatment"])}
    moved = {k.split(".")[0] for k in changed.get("results/claims_metrics.json", {})}
    assert moved and all(any(m == b or m.startswith(f"{b}_") for b in bertadam) for m in moved), moved
    assert "bertadam" in dvc(root, "params", "diff").stdout or "lr" in dvc(root, "params", "diff").stdout
    del repro
