"""One source of truth for code dependencies (pipeline/codedeps.py): the commands' code derived from their
imports, shared by Snakemake's rules (a stamp per command) and dvc.yaml (the stages' code deps).

Fast (ast only, no job runs) except the last test, which runs `dvc status` twice in a throw-away copy
of the project whose dvc.lock is written by `dvc commit` over placeholder outputs (no study is run).
"""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from pipeline import codedeps

REPO = Path(__file__).resolve().parent.parent
PKG = REPO / "pipeline"
DVC_YAML = REPO / "dvc.yaml"


def _rule_stage() -> dict[str, str]:
    return {r: s for s, rules in codedeps.STAGE_RULES.items() for r in rules}


def test_dvc_yaml_code_deps_are_the_derived_ones():
    """dvc.yaml never drifts from the imports: `make dvc-deps` rewrites it, this fails until it is run."""
    assert codedeps.drift(DVC_YAML) == [], "run `make dvc-deps`"


def test_every_rule_with_a_command_belongs_to_one_stage_and_lists_its_commands_stamp():
    cmds = codedeps.rule_commands()
    files = codedeps.rule_files()
    stage = _rule_stage()
    in_rule_files = {r for r, f in files.items() if f.startswith("rules/")}
    assert in_rule_files == set(stage), "every rule of rules/*.smk in one DVC stage (codedeps.STAGE_RULES)"
    for rule, f in files.items():
        if rule not in cmds or rule == "code_stamp":
            continue
        text = (REPO / f).read_text()
        start = re.search(rf"^rule {rule}:", text, re.M).start()
        nxt = re.search(r"^rule \w+:", text[start + 1 :], re.M)
        block = text[start : start + 1 + nxt.start()] if nxt else text[start:]
        stamps = re.findall(r'code_stamp\("([^"]+)"\)', block)
        assert stamps == [cmds[rule]], (rule, stamps, cmds[rule])


def test_commands_are_found_as_the_command_line_registers_them():
    """The ast reading of add_parser/set_defaults agrees with the real parser, command by command."""
    from pipeline.cli import parser

    sub = next(a for a in parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    real = {name: (p.get_default("fn").__module__.split(".")[-1], p.get_default("fn").__name__)
            for name, p in sub.choices.items()}
    assert codedeps.commands() == real


def test_the_workflow_imports_left_out_sit_in_their_functions_only():
    """NOT_IN_WORKFLOW names real imports, inside the named functions (moved elsewhere, they count again)."""
    for (importer, imported), functions in codedeps.NOT_IN_WORKFLOW.items():
        tree = ast.parse((PKG / f"{importer}.py").read_text())
        found = set()
        for top in tree.body:
            for node in ast.walk(top):
                if not isinstance(node, ast.ImportFrom):
                    continue
                module = (node.module or "") if node.level == 1 else (node.module or "").removeprefix("pipeline.")
                if (node.level == 1 or (node.module or "").startswith("pipeline.")) and module.split(".")[0] == imported:
                    found.add(getattr(top, "name", "<module>"))
        assert found and found <= set(functions), (importer, imported, found)


def test_the_engine_is_what_a_run_executes():
    engine = set(codedeps.command_code("finetune").files)
    for m in ("runner", "train", "model", "optim", "drift", "seeds", "settings", "errors", "features", "io",
              "metrics", "splits", "tasks", "architecture", "reinit"):
        assert f"pipeline/{m}.py" in engine, m
    # a run receives its resolved settings (a rule param): the loader, the analysis and the figures are not
    for m in ("config", "prepare", "figures", "stats", "tables", "report", "aggregate", "plan", "cli"):
        assert f"pipeline/{m}.py" not in engine, m
    assert "pipeline/schema.yaml" not in engine and "pipeline/reported.yaml" not in engine


def test_data_files_join_the_commands_that_read_them():
    assert "pipeline/reported.yaml" in codedeps.command_code("analyze").files
    assert "pipeline/schema.yaml" in codedeps.command_code("study").files  # config.py reads it
    assert "pipeline/fingerprints.json" in codedeps.command_code("data").files
    assert "pipeline/schema.yaml" in codedeps.planning_files()


def test_a_command_depends_on_its_own_function_not_on_its_neighbours():
    """select and aggregate are defined in one module: editing the aggregation reruns no selection (and so
    no selected fine-tune)."""
    assert "pipeline/aggregate.py" not in codedeps.command_code("select").files
    assert "pipeline/calibration.py" not in codedeps.command_code("select").files
    assert "pipeline/figures.py" not in codedeps.command_code("analyze").files
    assert "pipeline/tables.py" not in codedeps.command_code("figures").files


def _skeleton(dest: Path) -> Path:
    """The workflow's code (Snakefile, rules/, pipeline/) copied to `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO / "Snakefile", dest / "Snakefile")
    shutil.copytree(REPO / "rules", dest / "rules")
    shutil.copytree(PKG, dest / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def _digests(root: Path) -> dict[str, str]:
    """{rule: its command's digest} for the project at `root`."""
    return {r: codedeps.command_code(c, root / "pipeline").digest for r, c in codedeps.rule_commands(root).items()
            if r != "code_stamp"}


def _edit(path: Path) -> None:
    text = path.read_text()
    if path.suffix == ".py":
        # a real change: a new top-level function (a digest of the whole module changes; in a command's
        # own module, only code the command runs counts, and this function is not called)
        path.write_text(text + "\n\ndef _edited_by_test():\n    return 1\n")
    elif path.suffix in (".yaml", ".yml"):
        path.write_text(text + "\n# edited by test\n")
    elif path.suffix == ".json":
        path.write_text(text.rstrip() + " \n")
    else:
        path.write_text(text + "\n# edited by test\n")


EDITED = sorted(p.relative_to(REPO).as_posix() for p in PKG.iterdir()
                if p.suffix in (".py", ".yaml", ".json") and p.is_file()) + ["Snakefile"] + sorted(
    p.relative_to(REPO).as_posix() for p in (REPO / "rules").glob("*.smk"))


def test_every_edit_marks_stale_in_dvc_every_stage_whose_jobs_snakemake_reruns(tmp_path):
    """Each module of pipeline/, each data file, the Snakefile and each rule file, edited in a copy: the
    rules whose command digest changes (Snakemake reruns their jobs) all belong to stages that list the
    file in dvc.yaml (`dvc status` names them); and an edit marks no stage that cannot rerun (figures ->
    analyze only, never finetune)."""
    deps = codedeps.dvc_deps(DVC_YAML)
    stage_of = _rule_stage()
    base = _digests(_skeleton(tmp_path / "base"))
    rerun_by_file = {}
    for i, rel in enumerate(EDITED):
        root = _skeleton(tmp_path / f"e{i}")
        _edit(root / rel)
        now = _digests(root)
        rerun = {stage_of[r] for r in base if r in stage_of and now[r] != base[r]}
        named = {s for s, d in deps.items() if rel in d}
        assert rerun <= named, (rel, rerun, named)
        rerun_by_file[rel] = (rerun, named)
        if rel.startswith("rules/") and rel != "rules/common.smk":
            rules_here = {r for r, f in codedeps.rule_files().items() if f == rel}
            assert named == {stage_of[r] for r in rules_here}, (rel, named)
    for rel in ("pipeline/figures.py", "pipeline/stats.py", "pipeline/report.py", "pipeline/reported.yaml",
                "pipeline/tables.py", "pipeline/claims.py"):
        assert rerun_by_file[rel] == ({"analyze"}, {"analyze"}), (rel, rerun_by_file[rel])
    for rel in ("pipeline/train.py", "pipeline/optim.py", "pipeline/drift.py", "pipeline/settings.py"):
        assert rerun_by_file[rel][0] == {"finetune"} and "analyze" not in rerun_by_file[rel][1], rel
    # the loader plans every study (every stage asks Snakemake again) but reruns no fine-tune by itself
    assert "finetune" not in rerun_by_file["pipeline/config.py"][0]
    assert rerun_by_file["pipeline/config.py"][1] == set(codedeps.STAGE_RULES)
    # an edit of the selection's neighbour in commands_analysis.py reruns the selection never
    assert "finetune" not in rerun_by_file["pipeline/aggregate.py"][0]


def test_editing_a_command_module_outside_the_command_changes_no_digest(tmp_path):
    root = _skeleton(tmp_path)  # (codedeps caches what it read per folder: edit before reading)
    before = codedeps.command_code("select").digest
    path = root / "pipeline" / "commands_analysis.py"
    path.write_text(path.read_text().replace('"hosts": sorted(hosts),', '"hosts": sorted(hosts), "x": 1,'))
    assert codedeps.command_code("select", root / "pipeline").digest == before
    assert codedeps.command_code("provenance", root / "pipeline").digest != codedeps.command_code("provenance").digest


@pytest.mark.slow
def test_dvc_status_names_the_stages_of_an_edit(tmp_path):
    """Two real `dvc status` calls on a copy whose dvc.lock records the current code (`dvc commit` over
    placeholder outputs): a figure module -> analyze only; an engine module -> finetune only."""
    import yaml

    from workflow_helpers import copy_project, dvc

    root = copy_project(tmp_path / "project")
    stages = yaml.safe_load((root / "dvc.yaml").read_text())["stages"]
    for st in stages.values():
        for out in st.get("outs", []) + st.get("metrics", []):
            path = root / (next(iter(out)) if isinstance(out, dict) else out)
            if path.suffix:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text("{}\n" if path.suffix == ".json" else "placeholder\n")
            else:
                path.mkdir(parents=True, exist_ok=True)
    dvc(root, "commit", "-f", "-q")
    assert "up to date" in dvc(root, "status").stdout

    def stale() -> set[str]:
        out = dvc(root, "status").stdout
        return {m.group(1) for m in re.finditer(r"^(\w+):\s*$", out, re.M)}

    fig = root / "pipeline" / "figures.py"
    original = fig.read_text()
    fig.write_text(original + "\n# edited\n")
    assert stale() == {"analyze"}
    fig.write_text(original)
    _edit(root / "pipeline" / "train.py")
    assert stale() == {"finetune"}
