"""Which code each workflow step runs, derived from the imports: the one source of truth for the code
dependencies of Snakemake's rules (rules/common.smk) and of DVC's stages (dvc.yaml).

A command (`python -m pipeline <command>`) runs one function, found where the command line registers it
(`q = sub.add_parser("name") ... q.set_defaults(fn=cmd_name)`). Its code is, read with `ast` (never by
importing anything):
  - in the module that defines the function: the module's top-level statements that are not definitions
    (imports, constants), the function, and every top-level definition it names, transitively (so the
    select command does not depend on the aggregate command defined beside it);
  - every module of `pipeline/` those import, at any depth (imports inside functions too), whole; a name
    imported from a module that only re-imports it (`from .config import ConfigError`, defined in
    errors.py) is a dependency on the module that defines it;
  - the data files of `pipeline/` that this code names as a string (schema.yaml, reported.yaml,
    fingerprints.json).
Two imports are not followed (NOT_IN_WORKFLOW): the fine-tune command's `--config` convenience path
(by hand, bench/ and tests) resolves a run's settings with pipeline/config.py and builds its features with
pipeline/prepare.py; the workflow passes --settings (a rule param: a configuration change that alters a
run's settings reruns exactly that run) and --features (the features rule's output, whose own code is
prepare.py). So editing config.py, which plans every study, reruns no fine-tune by itself. The dispatcher
(pipeline/__init__.py, __main__.py, cli.py: argument parsing and the choice of function) is no command's
dependency either: the rules pass every value explicitly, and a help text must not rerun a study. A rule
that runs `python -m pipeline.<module>` depends on that whole module.

Snakemake: each rule's job lists one stamp file named after its command's digest
(`<study>/code/<command>-<digest>.sha256`, written by the code_stamp rule): an edit that changes the
code a command runs gives a new name, hence a new input, and the command's jobs rerun (with or without
Snakemake's metadata); touching a file, or editing code the command does not run, reruns nothing.
Planning computes the digests and writes nothing.

DVC: each stage lists the files of its rules' commands, the rule files, the Snakefile, and the code
Snakemake imports while planning (the Snakefile's and rules' `from pipeline.x import`): a change there
can change what Snakemake plans, so every stage asks Snakemake again. `python -m pipeline.codedeps
--write` rewrites dvc.yaml's code deps from this module (`make dvc-deps`); `--check` (and
tests/test_codedeps.py) fails when they drift.

Import-light (stdlib only): Snakemake imports this module while planning.
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import re
import sys
from pathlib import Path

PKG = Path(__file__).resolve().parent
ROOT = PKG.parent

# Imports the workflow never executes: (importing module, imported module) -> the functions of the
# importing module they sit in. An import of the same module anywhere else is followed as usual, so moving
# one out of these functions makes it a dependency again (tests/test_codedeps.py checks they exist).
NOT_IN_WORKFLOW = {
    ("runner", "config"): ("settings_from_args", "run_features"),  # finetune --config: resolve settings
    ("runner", "prepare"): ("run_features",),  # finetune without --features: build them in-process
    ("codedeps", "plan"): ("figure_plots",),  # `make dvc-deps` only: dvc.yaml's list of figures
}

# The DVC stage that owns each rule's outputs (dvc.yaml: prepare runs `snakemake prepare`, finetune
# `snakemake runs`, analyze the rest). tests/test_codedeps.py checks every rule of rules/*.smk is here.
STAGE_RULES = {
    "prepare": ("data", "splits", "features"),
    "finetune": ("finetune", "intermediate", "select"),
    "analyze": ("study_config", "aggregate", "metrics", "provenance", "analyze", "claims_metrics", "figures",
                "report"),
}
# Workflow files every stage depends on (they plan every job); rule files join the stages of their rules.
WORKFLOW_FILES = ("Snakefile", "rules/common.smk")


# ---- reading the package --------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def _source(pkg: Path, module: str) -> tuple[str, ast.Module]:
    text = (pkg / f"{module}.py").read_text()
    return text, ast.parse(text, filename=f"{module}.py")


def _modules(pkg: Path) -> set[str]:
    return {p.stem for p in pkg.glob("*.py")}


def _data_files(pkg: Path) -> set[str]:
    return {p.name for p in pkg.iterdir() if p.is_file() and p.suffix in (".yaml", ".yml", ".json")}


def _imported(node, module: str, mods: set[str]) -> list[tuple[str, tuple[str, ...] | None]]:
    """[(package module, names imported from it or None for the whole module)] of one import statement."""
    out = []
    if isinstance(node, ast.ImportFrom):
        if node.level == 1 or (node.level == 0 and node.module and node.module.split(".")[0] == "pipeline"):
            parts = (node.module or "").split(".")
            if node.level == 0:
                parts = parts[1:]
            if parts and parts[0]:
                out.append((parts[0], tuple(a.name for a in node.names)))
            else:  # from . import x, y
                out += [(a.name, None) for a in node.names]
    elif isinstance(node, ast.Import):
        out += [(a.name.split(".")[1], None) for a in node.names
                if a.name.startswith("pipeline.") and len(a.name.split(".")) > 1]
    return [(m, names) for m, names in out if m in mods and m != module]


@functools.lru_cache(maxsize=None)
def _top_level(pkg: Path, module: str) -> tuple[dict, dict]:
    """({name: top-level definition node (def, class, assignment)}, {name: module it is imported from})."""
    _, tree = _source(pkg, module)
    defs, reexports = {}, {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = node
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for t in targets:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = node
        elif isinstance(node, ast.ImportFrom):
            for m, names in _imported(node, module, _modules(pkg)):
                for a, name in zip(node.names, names or ()):
                    reexports[a.asname or a.name] = m
    return defs, reexports


def _origin(pkg: Path, module: str, name: str, seen=()) -> str:
    """The module that defines `name` as imported from `module` (following re-imports)."""
    defs, reexports = _top_level(pkg, module)
    if name in defs or name not in reexports or module in seen:
        return module
    return _origin(pkg, reexports[name], name, (*seen, module))


class _Stmt:
    """One top-level statement of a module, read once: its node, the package imports in it (with the
    imported names), the names it uses and its string constants."""

    __slots__ = ("node", "imports", "names", "strings")

    def __init__(self, node, module: str, mods: set[str]):
        self.node = node
        self.imports, self.names, self.strings = [], set(), set()
        for n in ast.walk(node):
            if isinstance(n, ast.Name):
                self.names.add(n.id)
            elif isinstance(n, ast.Constant) and isinstance(n.value, str):
                self.strings.add(n.value)
            elif isinstance(n, (ast.Import, ast.ImportFrom)):
                self.imports += _imported(n, module, mods)


@functools.lru_cache(maxsize=None)
def _statements(pkg: Path, module: str) -> tuple[_Stmt, ...]:
    _, tree = _source(pkg, module)
    mods = _modules(pkg)
    return tuple(_Stmt(node, module, mods) for node in tree.body)


def _deps_of_statements(pkg: Path, module: str, stmts) -> set[str]:
    """Package modules these top-level statements import (at any depth), resolved to where imported names
    live; imports NOT_IN_WORKFLOW (by the top-level function they sit in) left out."""
    out = set()
    for st in stmts:
        where = getattr(st.node, "name", None)
        for m, names in st.imports:
            if where in NOT_IN_WORKFLOW.get((module, m), ()):
                continue
            if names is None:
                out.add(m)
            else:
                out |= {_origin(pkg, m, n) for n in names}
    out.discard(module)
    return out


def _is_main_guard(node) -> bool:
    """`if __name__ == "__main__":` (never runs under `python -m pipeline`)."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


# ---- commands ---------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=None)
def commands(pkg: Path = PKG) -> dict[str, tuple[str, str]]:
    """{command: (module, function)} from every `q = sub.add_parser("name"); q.set_defaults(fn=f)` of the
    package, `f` resolved through the imports of the function (or module) that registers it."""
    out = {}
    for module in sorted(_modules(pkg)):
        text, tree = _source(pkg, module)
        if "set_defaults" not in text:
            continue
        funcs = (ast.FunctionDef, ast.AsyncFunctionDef)
        scopes = [tree] + [n for n in ast.walk(tree) if isinstance(n, funcs)]
        for scope in scopes:
            body = scope.body
            imported = {}
            for node in ast.walk(tree) if scope is tree else ast.walk(scope):
                if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module:
                    imported |= {a.asname or a.name: node.module.split(".")[0] for a in node.names}
            current = {}
            for stmt in body:
                call = getattr(stmt, "value", None)
                is_method = isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                method = call.func.attr if is_method else None
                if (isinstance(stmt, ast.Assign) and method == "add_parser"
                        and call.args and isinstance(call.args[0], ast.Constant)):
                    for t in stmt.targets:
                        if isinstance(t, ast.Name):
                            current[t.id] = stmt.value.args[0].value
                elif (isinstance(stmt, ast.Expr) and method == "set_defaults"
                        and isinstance(call.func.value, ast.Name)):
                    name = current.get(stmt.value.func.value.id)
                    for kw in stmt.value.keywords:
                        if kw.arg == "fn" and isinstance(kw.value, ast.Name) and name:
                            fn = kw.value.id
                            out[name] = (imported.get(fn, module), fn)
    return out


class Code:
    """The code one command runs: `files` (paths from the repository root, sorted), `lines` (one
    "sha256  what" per file, or per the used part of the command's own module) and `digest`."""

    def __init__(self, files: list[str], lines: list[str]):
        self.files = files
        self.lines = lines
        self.digest = hashlib.sha256("".join(f"{x}\n" for x in lines).encode()).hexdigest()[:16]

    def __repr__(self):
        return f"Code({self.digest}, {self.files})"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _rel(pkg: Path, name: str) -> str:
    path = pkg / name
    try:
        return path.relative_to(pkg.parent).as_posix()
    except ValueError:
        return path.as_posix()


@functools.lru_cache(maxsize=None)
def _module_deps(pkg: Path, module: str) -> frozenset[str]:
    """The package modules one whole module imports (any depth of its own code)."""
    return frozenset(_deps_of_statements(pkg, module, _statements(pkg, module)))


@functools.lru_cache(maxsize=None)
def _module_strings(pkg: Path, module: str) -> frozenset[str]:
    return frozenset().union(*(st.strings for st in _statements(pkg, module)))


def module_closure(pkg: Path, start: set[str]) -> set[str]:
    """The package modules `start` imports, at any depth, `start` included (whole modules)."""
    seen, todo = set(), list(start)
    while todo:
        m = todo.pop()
        if m in seen:
            continue
        seen.add(m)
        todo += sorted(_module_deps(pkg, m) - seen)
    return seen


@functools.lru_cache(maxsize=None)
def command_code(command: str, pkg: Path = PKG) -> Code:
    """The code `python -m pipeline <command>` runs (see the module's docstring)."""
    pkg = Path(pkg)
    if command.startswith("pipeline."):  # `python -m pipeline.<module>`: the whole module
        module = command.split(".", 1)[1]
        entry, used_names = list(_statements(pkg, module)), ["*"]
    else:
        module, fn = commands(pkg)[command]
        entry, used_names = _entry_statements(pkg, module, fn)
    deps = module_closure(pkg, _deps_of_statements(pkg, module, entry))
    deps.discard(module)
    named = set().union(*(st.strings for st in entry), *(_module_strings(pkg, m) for m in deps))
    datafiles = sorted(d for d in _data_files(pkg) if d in named)
    segment = "".join(_segment(pkg, module, st.node) for st in entry)
    lines = [f"{_sha(segment.encode())}  {_rel(pkg, module + '.py')}:{','.join(used_names)}"]
    lines += [f"{_file_sha(pkg / f'{m}.py')}  {_rel(pkg, m + '.py')}" for m in sorted(deps)]
    lines += [f"{_file_sha(pkg / d)}  {_rel(pkg, d)}" for d in datafiles]
    files = sorted([_rel(pkg, f"{m}.py") for m in deps | {module}] + [_rel(pkg, d) for d in datafiles])
    return Code(files, lines)


@functools.lru_cache(maxsize=None)
def _lines(pkg: Path, module: str) -> list[str]:
    return _source(pkg, module)[0].splitlines(keepends=True)


def _segment(pkg: Path, module: str, node) -> str:
    """The source lines of a top-level statement, its decorators included."""
    first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
    return "".join(_lines(pkg, module)[first - 1 : node.end_lineno])


@functools.lru_cache(maxsize=None)
def _file_sha(path: Path) -> str:
    return _sha(path.read_bytes())


def _entry_statements(pkg: Path, module: str, fn: str) -> tuple[list[_Stmt], list[str]]:
    """The top-level statements of the module a command's function lives in that the command runs: the
    non-definition statements (imports, `if` blocks; not the `__main__` guard), the function, and every
    top-level definition (function, class, assignment) these name, transitively. Returns (statements in
    file order, names of the definitions used)."""
    stmts = _statements(pkg, module)
    defs = {}
    for st in stmts:
        node = st.node
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            defs[node.name] = st
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            for t in node.targets if isinstance(node, ast.Assign) else [node.target]:
                for n in ast.walk(t):
                    if isinstance(n, ast.Name):
                        defs[n.id] = st
    is_def = {id(st) for st in defs.values()}
    header = [st for st in stmts if id(st) not in is_def and not _is_main_guard(st.node)]
    used, todo = {}, [defs[fn]] + [defs[n] for st in header for n in st.names if n in defs]
    while todo:
        st = todo.pop()
        if id(st) not in used:
            used[id(st)] = st
            todo += [defs[n] for n in st.names if n in defs and id(defs[n]) not in used]
    entry = [st for st in stmts if id(st) in used or st in header]
    names = sorted({getattr(st.node, "name", None) or _assigned(st.node) for st in used.values()})
    return entry, names


def _assigned(node) -> str:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return ",".join(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))


# ---- the workflow's files -------------------------------------------------------------------------------

_RULE = re.compile(r"^(?:local)?rule\s+(\w+)\s*:", re.M)
_COMMAND = re.compile(r"-m (pipeline\.\w+|pipeline \w+)")
_PLAN_IMPORT = re.compile(r"^\s*(?:from\s+pipeline\.(\w+)\s+import|import\s+pipeline\.(\w+))", re.M)


def rule_files(root: Path = ROOT) -> dict[str, str]:
    """{rule: the file that defines it} over the Snakefile and rules/*.smk."""
    out = {}
    for path in [root / "Snakefile", *sorted((root / "rules").glob("*.smk"))]:
        for name in _RULE.findall(path.read_text()):
            out[name] = path.relative_to(root).as_posix()
    return out


def rule_commands(root: Path = ROOT) -> dict[str, str]:
    """{rule: the `python -m pipeline` command its shell runs} for every rule that runs one."""
    out = {}
    for path in [root / "Snakefile", *sorted((root / "rules").glob("*.smk"))]:
        text = path.read_text()
        starts = [(m.start(), m.group(1)) for m in _RULE.finditer(text)] + [(len(text), None)]
        for (a, name), (b, _) in zip(starts, starts[1:]):
            cmds = {c.replace("pipeline ", "") for c in _COMMAND.findall(text[a:b])}
            if len(cmds) > 1:
                raise ValueError(f"{path}: rule {name} runs more than one command: {sorted(cmds)}")
            if cmds:
                out[name] = cmds.pop()
    return out


def planning_files(root: Path = ROOT, stage: str | None = None) -> list[str]:
    """Code Snakemake runs while planning a stage's jobs: the Snakefile, rules/common.smk and the package
    modules they import, and those the stage's own rule files import (whole, at any depth, with their
    data files). Every rule file is read whatever the target, but what another stage's rule file imports
    (pipeline/plan.py, the list of figures, for the report's rules) changes no job of this stage. Without
    a stage: every rule file's."""
    pkg = root / "pipeline"
    files = rule_files(root)
    own = {files[r] for r in STAGE_RULES[stage]} if stage else {f for f in files.values()}
    paths = [*WORKFLOW_FILES, *sorted(f for f in own if f not in WORKFLOW_FILES)]
    started = set()
    for path in paths:
        started |= {a or b for a, b in _PLAN_IMPORT.findall((root / path).read_text())}
    mods = module_closure(pkg, started)
    named = set().union(*(_module_strings(pkg, m) for m in mods))
    data = [d for d in _data_files(pkg) if d in named]
    return sorted([*WORKFLOW_FILES, *(f"pipeline/{m}.py" for m in mods), *(f"pipeline/{d}" for d in data)])


def stage_code(stage: str, root: Path = ROOT) -> list[str]:
    """A DVC stage's code deps: its planning code, the files of its rules and of their commands."""
    pkg = root / "pipeline"
    files, cmds = rule_files(root), rule_commands(root)
    out = set(planning_files(root, stage))
    for rule in STAGE_RULES[stage]:
        out.add(files[rule])
        if rule in cmds:
            out |= set(command_code(cmds[rule], pkg).files)
    return sorted(out)


# ---- dvc.yaml ---------------------------------------------------------------------------------------------


def _is_code(dep: str) -> bool:
    """The deps `make dvc-deps` manages: the workflow's and the package's files (a dependency added by
    hand elsewhere, e.g. requirements.lock, is kept as it is)."""
    return dep in ("Snakefile",) or dep.startswith(("rules/", "pipeline/"))


def _stage_blocks(text: str) -> dict[str, tuple[int, int]]:
    """{stage: (first line, end line) of its `deps:` list items} in dvc.yaml's text."""
    lines = text.splitlines()
    out, stage, i = {}, None, 0
    while i < len(lines):
        m = re.match(r"^  (\w+):\s*$", lines[i])
        if m:
            stage = m.group(1)
        if stage and re.match(r"^    deps:\s*$", lines[i]):
            j = i + 1
            while j < len(lines) and re.match(r"^      - ", lines[j]):
                j += 1
            out[stage] = (i + 1, j)
            i = j
            continue
        if re.match(r"^\S", lines[i]) and not lines[i].startswith("stages:"):
            stage = None
        i += 1
    return out


def dvc_deps(dvc_yaml: Path) -> dict[str, list[str]]:
    """{stage: its deps} as dvc.yaml lists them."""
    lines = dvc_yaml.read_text().splitlines()
    blocks = _stage_blocks(dvc_yaml.read_text())
    return {s: [lines[k].strip()[2:].strip() for k in range(a, b)] for s, (a, b) in blocks.items()}


def expected_deps(dvc_yaml: Path, root: Path = ROOT) -> dict[str, list[str]]:
    """{stage: deps}: dvc.yaml's data deps (results/...) as they are, then the derived code deps."""
    have = dvc_deps(dvc_yaml)
    return {s: [d for d in have.get(s, []) if not _is_code(d)] + stage_code(s, root) for s in STAGE_RULES}


FIGURES_BEGIN = "  # >>> the default study's figures (written by `make dvc-deps` from pipeline/plan.py)"
FIGURES_END = "  # <<< the default study's figures"


def figure_plots(root: Path = ROOT) -> list[str]:
    """dvc.yaml's image plots: the PNG of every figure the default study (params.yaml) plans."""
    sys.path.insert(0, str(root))
    try:
        from pipeline.config import load_config, study_root
        from pipeline.plan import planned_figures

        cfg = load_config([str(root / "params.yaml")])
    finally:
        sys.path.pop(0)
    return [f"{study_root(cfg)}/figures/{name}.png" for name in planned_figures(cfg)]


def _figure_block(text: str) -> tuple[int, int] | None:
    lines = text.splitlines()
    if FIGURES_BEGIN in lines and FIGURES_END in lines:
        return lines.index(FIGURES_BEGIN) + 1, lines.index(FIGURES_END)
    return None


def drift(dvc_yaml: Path, root: Path = ROOT) -> list[str]:
    """One line per stage whose code deps in dvc.yaml differ from the derived ones, and one if the figure
    plots differ from the default study's figures (empty: in sync)."""
    have, want = dvc_deps(dvc_yaml), expected_deps(dvc_yaml, root)
    out = []
    for s in STAGE_RULES:
        h, w = set(have.get(s, [])), set(want[s])
        if h != w:
            out.append(f"stage {s}: missing {sorted(w - h)}, not a dependency {sorted(h - w)}")
    text = dvc_yaml.read_text()
    block = _figure_block(text)
    if block is None:
        out.append(f"no figure plots block ({FIGURES_BEGIN.strip()} ... {FIGURES_END.strip()})")
    else:
        listed = [x.strip()[2:].strip() for x in text.splitlines()[block[0] : block[1]]]
        if listed != figure_plots(root):
            out.append(f"figure plots: {listed} instead of {figure_plots(root)}")
    return out


def write_dvc(dvc_yaml: Path, root: Path = ROOT) -> bool:
    """Rewrite the deps lists of dvc.yaml's stages and its figure plots (everything else kept). True when
    the file changed."""
    text = dvc_yaml.read_text()
    lines = text.splitlines()
    want = expected_deps(dvc_yaml, root)
    for s, (a, b) in sorted(_stage_blocks(text).items(), key=lambda kv: -kv[1][0]):
        if s in want:
            lines[a:b] = [f"      - {d}" for d in want[s]]
    new = "\n".join(lines) + "\n"
    block = _figure_block(new)
    if block is not None:
        lines = new.splitlines()
        lines[block[0] : block[1]] = [f"  - {p}" for p in figure_plots(root)]
        new = "\n".join(lines) + "\n"
    if new != text:
        dvc_yaml.write_text(new)
    return new != text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m pipeline.codedeps",
                                description="The code each workflow command and DVC stage depends on.")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--check", action="store_true",
                   help="exit 1 when dvc.yaml's code deps (or figure plots) differ from the derived ones")
    g.add_argument("--write", action="store_true", help="rewrite dvc.yaml's code deps from the imports")
    g.add_argument("--stamp", metavar="COMMAND",
                   help="write the code stamp of COMMAND (what the code_stamp rule runs) to --out")
    p.add_argument("--dvc-yaml", default=str(ROOT / "dvc.yaml"), help="the dvc.yaml to check or rewrite")
    p.add_argument("--digest",
                   help="with --stamp: the digest the workflow planned (refused if the code changed since)")
    p.add_argument("--out", help="with --stamp: the stamp file to write")
    a = p.parse_args(argv)
    if a.stamp:
        code = command_code(a.stamp)
        if a.digest and a.digest != code.digest:
            print(f"error: the code of {a.stamp} changed since the workflow was planned "
                  f"({a.digest} -> {code.digest}): run Snakemake again", file=sys.stderr)
            return 2
        from .io import atomic_write_text

        atomic_write_text(a.out, "".join(f"{x}\n" for x in code.lines))
        return 0
    dvc_yaml = Path(a.dvc_yaml)
    if a.check:
        problems = drift(dvc_yaml)
        for line in problems:
            print(f"{dvc_yaml}: {line} (run `make dvc-deps`)", file=sys.stderr)
        return 1 if problems else 0
    if a.write:
        print(f"{dvc_yaml}: {'rewritten' if write_dvc(dvc_yaml) else 'already in sync'}")
        return 0
    cmds = rule_commands()
    for rule, cmd in sorted(cmds.items()):
        c = command_code(cmd)
        print(f"{rule} (python -m pipeline {cmd}, {c.digest}): {' '.join(c.files)}")
    print(f"planning: {' '.join(planning_files())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
