"""Helpers for the end-to-end tests: a throw-away copy of the project (as git would see it), with
the project's .venv linked in, where Snakemake and DVC run the smoke study."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv"


def project_files(repo: Path = REPO) -> list[str]:
    """The project as a fresh clone would have it, before any study ran: tracked and untracked-but-not-
    ignored files, without the committed results of the default study (results/, dvc.lock)."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=repo,
                         capture_output=True, check=True).stdout.decode()
    return [f for f in out.split("\0")
            if f and (repo / f).is_file() and not f.startswith("results/") and f != "dvc.lock"]


def copy_project(dest: Path, smoke_as_default: bool = False) -> Path:
    """Copy the working tree's tracked and untracked-but-not-ignored files into a fresh git repo."""
    dest.mkdir(parents=True, exist_ok=True)
    for rel in project_files():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, target)
    (dest / ".venv").symlink_to(VENV)
    if smoke_as_default:
        # DVC versions the default study: make the smoke overlay the default (same results, results/)
        base = yaml.safe_load((dest / "params.yaml").read_text())
        smoke = yaml.safe_load((dest / "configs" / "smoke.yaml").read_text())
        from pipeline.config import deep_merge

        merged = deep_merge(base, smoke)
        merged["study"]["name"] = "default"
        (dest / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "-c", "user.email=ci@example.org", "-c", "user.name=ci", "commit", "-qm", "snapshot")
    return dest


def git(cwd, *args):
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def env() -> dict:
    e = dict(os.environ)
    e.setdefault("GLUE_DIR", str((REPO.parent / "shared" / "data" / "glue").resolve()))
    e["GLUE_DIR"] = str(Path(e["GLUE_DIR"]).resolve())
    e.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", PIPELINE_LOG="INFO")
    return e


def imports_log(cwd) -> Path:
    """Where the pipeline's commands run in a copy log the package modules they imported
    (PIPELINE_IMPORTS_LOG, pipeline/cli.py): inside .git, so git and DVC never see it."""
    return Path(cwd) / ".git" / "pipeline-imports.jsonl"


def run(cmd, cwd, check=True, timeout=1800) -> subprocess.CompletedProcess:
    e = env()
    if (Path(cwd) / ".git").is_dir():
        e["PIPELINE_IMPORTS_LOG"] = str(imports_log(cwd))
    proc = subprocess.run(cmd, cwd=cwd, env=e, capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, cmd))} failed ({proc.returncode}):\n"
                             f"{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


def snakemake(cwd, *args, check=True):
    return run([str(VENV / "bin" / "snakemake"), "--cores", "2", *args], cwd, check=check)


def dvc(cwd, *args, check=True):
    return run([str(VENV / "bin" / "dvc"), *args], cwd, check=check)


def finetune_jobs(snakemake_output: str) -> list[tuple[str, str, str]]:
    """(task, condition, seed) of every finetune job a Snakemake run or dry run lists."""
    jobs, in_rule = [], False
    for line in snakemake_output.splitlines():
        s = line.strip()
        if s.startswith("rule ") or s.startswith("localrule "):
            in_rule = s.rstrip(":").split()[-1] == "finetune"
        elif in_rule and s.startswith("wildcards:"):
            kv = dict(p.strip().split("=", 1) for p in s[len("wildcards:"):].split(","))
            jobs.append((kv["task"], kv["condition"], kv["seed"]))
            in_rule = False
    return jobs


def load_json(path) -> dict:
    return json.loads(Path(path).read_text())
