"""No configuration string reaches a shell unquoted (issue #26): Snakemake in throw-away project copies.

A GLUE folder whose path holds a space, or whose name is a shell injection, is one argument of the `data`
rule's command and works; dataset names that would inject or escape the repository, and a GLUE folder
that does not exist, are refused before any job, naming the key. The project copy's own path holds a
space and Snakemake runs from its .venv there: jobs run `python` from that folder (the Snakefile puts it
first on the PATH), which works with the space.
Seven Snakemake calls in all (the smoke study's `data` rule for RTE only: no model, no torch job).
"""
from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest
import yaml

from workflow_helpers import REPO, copy_project, env, run

pytestmark = pytest.mark.slow

GLUE = Path(env()["GLUE_DIR"])  # the shared GLUE folder ($GLUE_DIR, else ../shared/data/glue)
TARGET = "results/smoke/data/rte/train.jsonl"       # the smoke study's `data` job for RTE
MARKERS = {"pwned", "pwned2", "pwned3", "escaped"}  # names an injected command or a traversal would create


def _glue_folder(parent: Path, name: str) -> Path:
    """A GLUE folder named `name` (literally): symlinks to the shared GLUE task folders."""
    folder = parent / name
    folder.mkdir(parents=True)
    for task in GLUE.iterdir():
        if task.is_dir():
            (folder / task.name).symlink_to(task.resolve())
    return folder


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    """A base folder holding a project copy (in a folder with a space) and GLUE folders with hostile names."""
    if not (GLUE / "RTE" / "train.tsv").is_file():
        pytest.skip(f"no local GLUE at {GLUE}")
    base = tmp_path_factory.mktemp("safety")
    glue = {name: _glue_folder(base / "glue", name)
            for name in ("glue with space", "$(touch PWNED)", "a;touch PWNED2;b")}
    return {"base": base, "glue": glue, "project": copy_project(base / "project with space")}


def smk(project: Path, overlay: dict, *args) -> tuple[int, str]:
    """`snakemake --configfile configs/smoke.yaml <overlay> ...` in `project`, run by the copy's own
    interpreter (sys.executable, whose folder the jobs' PATH starts with, is then a path with a space).
    Returns (exit code, output)."""
    (project / "overlay.yaml").write_text(yaml.safe_dump(overlay, sort_keys=False))
    proc = run([str(project / ".venv" / "bin" / "python"), "-m", "snakemake", *args, "--cores", "1", "-p",
                "--configfile", "configs/smoke.yaml", "overlay.yaml"], project, check=False, timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def markers(root: Path) -> list[Path]:
    """Files or folders under root named like a marker (`escaped.log` too), and any in the test's own
    working directory (where a command without a `cd` would run). Symlinks are not followed."""
    found = [Path.cwd() / n for n in os.listdir(Path.cwd()) if n.lower().split(".")[0] in MARKERS]
    for dirpath, dirnames, filenames in os.walk(root):
        found += [Path(dirpath) / n for n in dirnames + filenames if n.lower().split(".")[0] in MARKERS]
    return found


def shell_commands(output: str, rule_marker: str) -> list[list[str]]:
    """The argument vectors of the printed (-p) shell commands that contain `rule_marker`."""
    return [shlex.split(line.split("Shell command:", 1)[1]) for line in output.splitlines()
            if "Shell command:" in line and rule_marker in line]


def glue_arg(argv: list[str]) -> str | None:
    return argv[argv.index("--glue-dir") + 1] if "--glue-dir" in argv else None


@pytest.mark.parametrize("name", ["glue with space", "$(touch PWNED)", "a;touch PWNED2;b"])
def test_data_rule_reads_a_glue_folder_with_any_name(tree, name):
    """(a, b) The data job runs for real with the folder as one argument, and no injected command runs."""
    project, folder = tree["project"], tree["glue"][name]
    code, out = smk(project, {"data": {"glue_dir": str(folder)}}, TARGET, "--forceall")
    assert code == 0, out[-4000:]
    for f in ("train.jsonl", "dev.jsonl", "meta.json"):
        assert (project / "results/smoke/data/rte" / f).is_file(), f
    (argv,) = shell_commands(out, "-m pipeline data")
    assert argv[0] == "python"  # the copy's .venv/bin, first on the PATH (a folder whose path has a space)
    assert glue_arg(argv) == str(folder)
    assert argv[argv.index("--out") + 1] == "results/smoke/data/rte"
    log = (project / "results/smoke/logs/data/rte.log").read_text()
    assert str(folder / "RTE") in log, log  # read from that folder, not from $GLUE_DIR
    assert not markers(tree["base"]), markers(tree["base"])  # the job's cwd is the project copy, in base


def test_dry_run_quotes_the_glue_folder_and_runs_nothing(tree):
    """(c) `snakemake -n` prints the command with the hostile folder as one argument and runs nothing."""
    project, folder = tree["project"], tree["glue"]["$(touch PWNED)"]
    code, out = smk(project, {"data": {"glue_dir": str(folder)}}, TARGET, "--forceall", "-n")
    assert code == 0, out[-4000:]
    (argv,) = shell_commands(out, "-m pipeline data")
    assert glue_arg(argv) == str(folder)
    assert not markers(tree["base"]), markers(tree["base"])


def hostile_dataset(name: str) -> dict:
    """An overlay defining the dataset `name` (RTE rows) and adding it to the smoke study's tasks."""
    tasks = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())["study"]["tasks"]
    return {"datasets": {name: {"task": "rte", "splits": {}}}, "study": {"tasks": [*tasks, name]}}


MISSING_GLUE = "/nonexistent/$(touch PWNED3)/glue"
REFUSED = {  # case: (overlay, the key and the value its message names)
    "injecting-dataset": (hostile_dataset("x;touch pwned;"), "datasets", "x;touch pwned;"),
    "escaping-dataset": (hostile_dataset("../../../../escaped"), "datasets", "../../../../escaped"),
    "missing-glue-folder": ({"data": {"glue_dir": MISSING_GLUE}}, "glue_dir", MISSING_GLUE),
}


@pytest.fixture(scope="module")
def clean_project(tmp_path_factory):
    """A copy no Snakemake ever planned in successfully: it has no results/ folder at all."""
    return copy_project(tmp_path_factory.mktemp("refused") / "project")


@pytest.mark.parametrize("case", REFUSED)
def test_unsafe_configuration_is_refused_before_any_job(clean_project, case):
    """(d) Refused at validation (`snakemake -n`): non-zero exit, the key named, nothing written or run."""
    overlay, key, value = REFUSED[case]
    code, out = smk(clean_project, overlay, "-n")
    assert code != 0, out[-4000:]
    assert "invalid configuration" in out and key in out and value in out, out[-4000:]
    assert not (clean_project / "results").exists(), sorted(map(str, (clean_project / "results").rglob("*")))
    assert not markers(clean_project.parent), markers(clean_project.parent)  # ../../../../escaped lands here
