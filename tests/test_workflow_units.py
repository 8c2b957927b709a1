"""The workflow's small guarantees, without running a study: file modes follow the umask, files written
twice from the same content are the same bytes, a broken run record is named, the flat claims metric,
the report's opening, and the Snakemake profiles (profiles/default applies under profiles/slurm without
undoing its cluster settings). A few seconds in all."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def umask_002():
    old = os.umask(0o002)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_written_files_follow_the_umask(tmp_path, umask_002):
    """mkstemp alone makes 0600 files: colleagues on a shared machine could not read the results."""
    from pipeline.io import atomic_save, atomic_write_json, atomic_write_text

    atomic_write_text(tmp_path / "a.txt", "x")
    atomic_write_json(tmp_path / "b.json", {"x": 1})
    atomic_save(tmp_path / "c.bin", lambda p: Path(p).write_bytes(b"x"))
    for name in ("a.txt", "b.json", "c.bin"):
        assert _mode(tmp_path / name) == 0o664, name
    os.umask(0o077)
    atomic_write_text(tmp_path / "d.txt", "x")
    assert _mode(tmp_path / "d.txt") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.bin", "d.txt"]  # no temporaries


def test_torch_save_gives_the_same_bytes_whatever_the_folder(tmp_path):
    """torch.save records the file's name inside its archive: atomic_save writes under a fixed name, so the
    same features saved twice, or in another folder under another name, are the same bytes (a rebuilt
    file reruns nothing)."""
    import torch

    from pipeline.io import atomic_save

    obj = {"input_ids": torch.arange(40).reshape(4, 10), "labels": torch.tensor([0, 1, 1, 0]), "task": "rte"}
    paths = [tmp_path / "a" / "rte" / "m-32.pt", tmp_path / "b" / "other.pt", tmp_path / "a" / "rte" / "m-32.pt"]
    blobs = []
    for p in paths:
        atomic_save(p, lambda tmp: torch.save(obj, tmp))
        blobs.append(p.read_bytes())
    assert blobs[0] == blobs[1] == blobs[2]
    assert torch.equal(torch.load(paths[1])["input_ids"], obj["input_ids"])


def _record(seed=0) -> dict:
    return {"task": "rte", "condition": "debiased", "seed": seed, "init_seed": seed, "data_seed": seed,
            "glue_task": "rte", "metric": "accuracy", "selection_metric": "accuracy",
            "test_best": {"accuracy": 0.6}, "test_last": {"accuracy": 0.5}, "val_best": {"accuracy": 0.6},
            "val_last": {"accuracy": 0.5}, "majority_test": {"accuracy": 0.5}, "label_std_test": 0.5,
            "spread_best": {"pred_std": 0.4, "pred_major_share": 0.6},
            "spread_last": {"pred_std": 0.4, "pred_major_share": 0.6}, "total_steps": 4, "best_step": 2,
            "n_train": 32, "n_val": 24, "n_test": 48, "timing": {"wall_s": 12.5 + seed, "train_examples_per_s": 9.0},
            "settings": {"lr": 1e-4}}


def test_runs_table_holds_results_only_and_timings_go_apart():
    from pipeline.aggregate import runs_table, timing_table

    a = runs_table([_record(0), _record(1)])
    b = runs_table([{**_record(0), "timing": {"wall_s": 99.0, "train_examples_per_s": 1.0}}, _record(1)])
    assert "wall_s" not in a.columns and a.to_csv() == b.to_csv()  # a rerun's other timing: same bytes
    assert timing_table([_record(1), _record(0)])["wall_s"].tolist() == [12.5, 13.5]


@pytest.mark.parametrize("content", ['{"task": "rte", "condit', "", "[1, 2]"])
def test_a_broken_record_is_named(tmp_path, content):
    from pipeline.aggregate import load_records
    from pipeline.errors import RecordError

    d = tmp_path / "runs" / "rte" / "debiased" / "seed0"
    d.mkdir(parents=True)
    (d / "record.json").write_text(content)
    with pytest.raises(RecordError, match=str(d / "record.json")):
        load_records(tmp_path, [("rte", "debiased", 0)])


def test_the_aggregation_stops_on_a_truncated_record_naming_it(tmp_path, monkeypatch):
    d = tmp_path / "runs" / "rte" / "debiased" / "seed0"
    d.mkdir(parents=True)
    (d / "record.json").write_text('{"task": "rte", "cond')
    study = {"study": {"name": "x", "tasks": ["rte"]}}
    (tmp_path / "study.json").write_text(json.dumps(study))
    from pipeline import commands_analysis

    class A:  # the parsed arguments of `python -m pipeline aggregate`
        root, out = str(tmp_path), str(tmp_path / "summary")
        study = str(tmp_path / "study.json")

    import pipeline.config

    monkeypatch.setattr(pipeline.config, "run_grid", lambda cfg: [("rte", "debiased", 0)])
    from pipeline.errors import RecordError

    with pytest.raises(RecordError) as err:
        commands_analysis.cmd_aggregate(A)
    assert str(d / "record.json") in str(err.value) and "delete" in str(err.value)
    assert not (tmp_path / "summary").exists()


def test_the_command_line_names_a_broken_record_in_one_line(tmp_path):
    """`python -m pipeline select` (any command reading records) exits 2 with one line naming the file."""
    bad = tmp_path / "record.json"
    bad.write_text('{"task": "rte", "cond')
    proc = subprocess.run([sys.executable, "-m", "pipeline", "select", "--candidates", '[{"name": "a", "overrides": {}}]',
                           "--task", "rte", "--family", "f", "--records", str(bad), "--out", str(tmp_path / "o.json")],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1])
    assert proc.returncode == 2, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"error: {bad}: not a complete run record"), proc.stderr
    assert not (tmp_path / "o.json").exists()


CLAIMS = {
    "bias_correction": {
        "rte": {"effect": 0.021, "ci_low": -0.04, "ci_high": 0.082, "ci_level": 0.9, "verdict": "inconclusive",
                "p": 0.2, "bootstrap_interval": [0.0, 0.04], "category": "significant before Holm only"},
        "all tasks": {"rq": "1", "claim": "Bias-corrected Adam beats BERTAdam", "verdict": "inconclusive",
                      "category": "significant before Holm only", "expect": "better"},
    },
    "bias_correction_fewer_degenerate": {
        "rte": {"effect": 0.0, "ci_low": 0.0, "ci_high": float("nan"), "ci_level": 0.9, "verdict": "inconclusive"},
        "all tasks": {"rq": "2a", "claim": "Debiasing reduces degenerate runs", "verdict": "inconclusive",
                      "category": "too few seeds"},
    },
    "bias_correction_degenerate_and_spread": {
        "rte": {"verdict": "inconclusive", "category": "too few seeds"},
        "all tasks": {"rq": "2", "claim": "Debiasing reduces degenerate runs and the spread",
                      "verdict": "inconclusive", "category": "too few seeds"},
    },
    "mixout": {
        "sts-b": {"effect": 0.002, "ci_low": -0.17, "ci_high": 0.17, "ci_level": 0.9, "verdict": "reproduced"},
        "all tasks": {"rq": "5", "claim": "Mixout adds little", "verdict": "reproduced", "category": "reproduced"},
    },
    "wd": {
        "sts-b": {"effect": 0.0, "ci_low": -0.2, "ci_high": 0.2, "ci_level": 0.9, "verdict": "uninformative"},
        "all tasks": {"rq": "5", "claim": "Weight decay adds little", "verdict": "uninformative",
                      "category": "setting too weak"},
    },
}


def test_the_claims_metric_is_flat_enough_for_dvc_metrics_diff(tmp_path):
    """claims_metrics.json: <claim>.verdict and <claim>.<task>.{effect, ci_low, ci_high, ci_level, verdict}."""
    from pipeline.headline import headline

    flat = headline(CLAIMS)
    assert flat["bias_correction"] == {"rq": "1", "verdict": "inconclusive", "rte": {
        "effect": 0.021, "ci_low": -0.04, "ci_high": 0.082, "ci_level": 0.9, "verdict": "inconclusive"}}
    assert flat["bias_correction_fewer_degenerate"]["rte"]["ci_high"] is None  # NaN: JSON has none
    assert flat["bias_correction_degenerate_and_spread"]["rte"] == {"verdict": "inconclusive"}
    (tmp_path / "claims.json").write_text(json.dumps(CLAIMS))
    subprocess.run([sys.executable, "-m", "pipeline.headline", "--claims", str(tmp_path / "claims.json"),
                    "--out", str(tmp_path / "m.json")], cwd=REPO, check=True)
    assert json.loads((tmp_path / "m.json").read_text()) == json.loads(json.dumps(flat))


def test_the_report_opens_with_one_line_per_research_question():
    import re

    from pipeline.report import answers_html

    page = answers_html(CLAIMS)
    lines = re.findall(r"<li>(.*?)</li>", page)
    assert [re.match(r"<strong>RQ (\w+)</strong>", x).group(1) for x in lines] == ["1", "2", "5"]
    assert "<strong>inconclusive</strong>" in lines[0] and "RTE +2.1 [-4.0, +8.2]" in lines[0]
    assert "2a debiasing reduces degenerate runs: inconclusive" in lines[1]
    assert "Mixout adds little" in lines[2] and "Weight decay adds little" in lines[2]
    assert "90% interval" in page


def test_every_figure_has_a_title_saying_what_it_shows():
    from pipeline.plan import FIGURES
    from pipeline.report import FIGURE_TITLES, figure_title

    assert set(FIGURE_TITLES) == {f.name for f in FIGURES}
    for f in FIGURES:
        assert f.name not in figure_title(f.name, f.label)
    assert figure_title("fig02_optimiser_test", "Figure 2").endswith("(Figure 2)")


def _parsed(*argv):
    """Snakemake's own reading of its command line in the repository (profiles included)."""
    code = ("import json, sys; from snakemake.cli import parse_args; _, a = parse_args(sys.argv[1:]); "
            "print(json.dumps({k: getattr(a, k) for k in ('jobs', 'retries', 'keep_going', 'cores', "
            "'rerun_incomplete', 'max_checksum_file_size', 'latency_wait', 'executor', 'printshellcmds')}))")
    out = subprocess.run([str(REPO / ".venv" / "bin" / "python"), "-c", code, *argv], cwd=REPO, check=True,
                         capture_output=True, text=True)
    return json.loads(out.stdout)


def test_the_default_profile_applies_alone_and_under_the_slurm_profile():
    """Snakemake 9 loads profiles/default by itself, also under --profile profiles/slurm, where its keys win:
    it must leave the SLURM profile's jobs, retries, keep-going and latency-wait as they are."""
    alone = _parsed("-n")
    assert alone["cores"] == 2 and alone["rerun_incomplete"] and alone["max_checksum_file_size"] >= 10**9
    assert alone["keep_going"] is False and alone["executor"] is None
    assert _parsed("-n", "--cores", "7")["cores"] == 7  # the command line wins
    slurm = _parsed("-n", "--profile", "profiles/slurm")
    assert (slurm["jobs"], slurm["retries"], slurm["keep_going"], slurm["latency_wait"]) == (100, 2, True, 120)
    assert slurm["executor"] == "slurm" and slurm["rerun_incomplete"] and slurm["printshellcmds"]


def test_no_committed_figure_is_a_placeholder():
    """A figure without data is not planned (pipeline/plan.py): every committed figure's CSV holds rows."""
    repo = Path(__file__).resolve().parents[1]
    tracked = subprocess.run(["git", "ls-files", "results"], capture_output=True, text=True, check=True,
                             cwd=repo).stdout.split()
    csvs = [repo / c for c in tracked if "/figures/" in c and c.endswith(".csv")]
    assert csvs, "no committed figure CSVs found"
    empty = [str(c) for c in csvs if len(c.read_text().strip().splitlines()) < 2]
    assert not empty, f"placeholder figures (no data rows): {empty}"
