"""One self-contained HTML report (tables, claims, every figure embedded as base64 PNG with its caption,
the paper map, the study's config hash) and the paper map (paper_map.md): every table and figure of
the paper with the file that regenerates it here, the Snakemake target and configuration, or the reason
it cannot be produced in this environment.

Reads only the tables/ and figures/ folders (their index.json files) and the study's configuration;
imports nothing heavier than the standard library and yaml, so the report is cheap to rebuild.
"""

from __future__ import annotations

import base64
import html
import json
import os
import re
from pathlib import Path

import yaml

from .io import atomic_write_text
from .plan import FIGURES, planned_figures, planned_tables

TABLE_CODE = {
    "claims": "table_claims",
    "table3_splits": "table3_splits",
    "optimiser": "table_optimiser",
    "degenerate": "table_degenerate",
    "selection": "table_selection",
}

OFFLINE = "the MNLI and QQP training sets are not available offline, and QNLI has only its dev set here"
CLUSTER = "configs/paper.yaml (bert-large-uncased, full data, 20-50 seeds) on a GPU cluster"
TASK_NAMES = {"rte": "RTE", "mrpc": "MRPC", "sts-b": "STS-B", "cola": "CoLA", "sst-2": "SST-2", "qnli": "QNLI",
              "qqp": "QQP", "mnli": "MNLI"}
LARGE = {"sst-2", "qnli", "qqp", "mnli"}

# Every table and figure of the paper (main text and appendix): (item, what it shows, the tables that
# regenerate it here (name@task: only when the study has that task), why it is not produced when they are
# absent, what the paper's own scale needs beyond this study). A figure item's outputs are the figures of
# plan.FIGURES that cover it, and its reason, when absent, the figure's own (or the item's, for @large).
PAPER_ITEMS = [
    (
        "Table 1",
        "Standard vs Re-init, 3 epochs vs longer, 12 datasets",
        ["table1"],
        "this study's grid runs fewer than two of Table 1's conditions",
        f"the paper's full-size and 1k rows need {CLUSTER}; {OFFLINE}",
    ),
    (
        "Table 2",
        "earlier stabilisers re-evaluated with debiased Adam",
        ["table2"],
        "this study's grid runs fewer than two of Table 2's conditions",
        f"the paper's scale needs {CLUSTER}; transfer from MNLI needs its training set ({OFFLINE})",
    ),
    ("Table 3", "datasets, split sizes and majority baselines", ["table3_splits"], "", ""),
    (
        "Table 4",
        "mixed vs full precision (Appendix C)",
        ["table4"],
        "mixed precision exists only on CUDA (CPU runs are always fp32): run configs/paper.yaml (condition fp32) on a "
        "GPU cluster with analysis.tables.table4 {columns: {mixed_precision: debiased, full_precision: fp32}}",
        "",
    ),
    (
        "Table 5",
        "bias correction on full MNLI (Appendix D)",
        ["optimiser@mnli"],
        f"full MNLI needs {CLUSTER} (task mnli, seed set mnli3); {OFFLINE}",
        "",
    ),
    (
        "Table 6",
        "fine-tuning recipes of other models (Appendix F)",
        [],
        "a table of inputs, not results: the per-model recipes are `models:` in configs/paper.yaml (RoBERTa, "
        "ELECTRA, XLNet and BART), used by the roberta_*/electra_*/xlnet_*/bart_* conditions",
        "",
    ),
    (
        "Table 7",
        "Standard vs Re-init on other large models (Appendix F)",
        ["table7"],
        f"RoBERTa-, ELECTRA-, XLNet- and BART-large need {CLUSTER} (weights not available offline) with "
        f"analysis.tables.table7 {{columns: {{roberta_standard: ..., roberta_reinit: ..., electra_standard: ..., "
        f"electra_reinit: ..., xlnet_standard: ..., xlnet_reinit: ..., bart_standard: ..., bart_reinit: ...}}}} "
        f"(as in configs/paper.yaml)",
        "",
    ),
    ("Figure 1", "bias of BERTAdam's update against steps", None, "", ""),
    ("Figure 2", "test performance, BERTAdam vs debiased (box plots)", None, "", ""),
    ("Figure 3", "training loss, BERTAdam vs debiased (RTE)", None, "", ""),
    ("Figure 4", "expected test performance vs number of trials", None, "", ""),
    ("Figure 5", "validation distribution vs Re-init L (RTE, MRPC)", None, "", ""),
    ("Figure 6", "training loss, Standard vs Re-init", None, "", ""),
    ("Figure 7", "per-block L2 drift vs steps, Standard vs Re-init L", None, "",
     "the paper's 24 blocks of BERT-large need configs/paper.yaml"),
    ("Figure 8", "validation metric vs training iterations (1k datasets)", None, "",
     f"the 1k datasets and the step grid 96-3200 need {CLUSTER}"),
    ("Figure 9", "validation grid over init seed x data seed (RTE)", None, "", ""),
    ("Figure 10", "std with one seed fixed (RTE)", None, "", ""),
    ("Figure 11", "training loss, BERTAdam vs debiased, all four tasks", None, "",
     "the paper's four tasks at full size need configs/paper.yaml"),
    ("Figure 12", "expected validation performance vs number of trials", None, "", ""),
    ("Figure 13", "validation distribution vs Re-init L, 12 datasets", None, "",
     f"the paper's 12 datasets need {CLUSTER}; {OFFLINE}"),
    ("Figure 14", "validation metric vs iterations, SST/QNLI/QQP/MNLI (1k)", None,
     f"{OFFLINE}; SST-2 (1k) can run here in a study that includes sst-2 with train_size 1000 and Standard and "
     f"Longer (or a step sweep)", ""),
    ("Figure 15", "L2 drift of all 24 blocks, RTE", None, "", "BERT-large's 24 blocks need configs/paper.yaml"),
    ("Figure 16", "L2 drift of all 24 blocks, MRPC", None, "", "BERT-large's 24 blocks need configs/paper.yaml"),
    ("Figure 17", "L2 drift of all 24 blocks, STS-B", None, "", "BERT-large's 24 blocks need configs/paper.yaml"),
    ("Figure 18", "L2 drift of all 24 blocks, CoLA", None, "", "BERT-large's 24 blocks need configs/paper.yaml"),
]


def item_outputs(item: str, tables) -> list[str]:
    """The outputs that regenerate a paper item: its tables, or the figures of plan.FIGURES covering it."""
    if tables is not None:
        return list(tables)
    out = []
    for f in FIGURES:
        for cover in f.covers:
            it, _, cond = cover.partition("@")
            if it == item:
                out.append(f"{f.name}@{cond}" if cond else f.name)
    return out


def _study_tasks(cfg) -> list[str]:
    from .config import dataset_name, glue_task_of

    return [glue_task_of(cfg, dataset_name(cfg, t)) for t in cfg["study"]["tasks"]]


REPO = Path(__file__).resolve().parents[1]


def _overlay(cfg) -> str | None:
    """The configs/ overlay that defines this study (by its study.name), if there is one."""
    name = cfg["study"]["name"]
    if name == "default":
        return None
    for p in sorted((REPO / "configs").glob("*.yaml")):
        try:
            if (yaml.safe_load(p.read_text()) or {}).get("study", {}).get("name") == name:
                return f"configs/{p.name}"
        except yaml.YAMLError:
            continue
    return f"<the overlay that sets study.name: {name}>"


def _config_file(cfg) -> str:
    over = _overlay(cfg)
    return "params.yaml" if over is None else f"params.yaml + {over}"


def _snakemake_cmd(cfg, target) -> str:
    over = _overlay(cfg)
    return f"snakemake --cores 1{'' if over is None else ' --configfile ' + over} {target}"


def paper_map_rows(cfg, tables_dir, figures_dir, base_dir) -> list[dict]:
    """One row per paper item: produced files (relative to base_dir) or the reason it is not produced."""
    tables, figs = set(planned_tables(cfg)), set(planned_figures(cfg))
    tasks = set(_study_tasks(cfg))
    absent = {f.name: f.absent for f in FIGURES}

    def rel(p):
        return os.path.relpath(p, base_dir)

    rows = []
    for item, what, table_outs, reason, scale in PAPER_ITEMS:
        files, code, target, why = [], [], [], []
        for out in item_outputs(item, table_outs):
            name, _, cond = out.partition("@")
            if cond == "large" and not (tasks & LARGE):
                why.append(reason or f"this study has none of the large tasks ({', '.join(sorted(LARGE))})")
                continue
            if cond and cond != "large" and cond not in tasks:
                why.append(reason or f"this study has no {TASK_NAMES.get(cond, cond)} runs")
                continue
            if name in tables:
                files += [rel(Path(tables_dir) / f"{name}.{e}") for e in ("md", "tex", "csv")]
                fn = TABLE_CODE.get(name, "table_layout1")
                code.append(f"pipeline/tables.py ({fn})")
                target.append(_snakemake_cmd(cfg, f"{Path(tables_dir).as_posix()}/{name}.md"))
            elif name in figs:
                files += [rel(Path(figures_dir) / f"{name}.{e}") for e in ("png", "csv")]
                code.append(f"pipeline/figures.py ({name})")
                target.append(_snakemake_cmd(cfg, f"{Path(figures_dir).as_posix()}/{name}.png"))
            else:
                why.append(absent.get(name) or reason or "not in this study")
        status = "produced" if files else "not produced here"
        if files:
            note = f"at this study's scale ({scale})" if scale else ""
        else:
            note = "; ".join(dict.fromkeys(why)) if why else (reason or "not in this study")
        rows.append(
            {
                "item": item,
                "what": what,
                "files": files,
                "code": sorted(set(code)),
                "target": target[:1],
                "config": _config_file(cfg) if files else "",
                "status": status,
                "reason": note,
            }
        )
    return rows


def paper_map_markdown(cfg, rows) -> str:
    lines = [
        "# Paper map: every table and figure of Zhang et al. (ICLR 2021)",
        "",
        f"Study `{cfg['study']['name']}` (config hash `{cfg.get('_config_hash', '')}`), configuration "
        f"{_config_file(cfg)}. Paths are relative to this file. Rules: `analyze` (tables), `figures`, "
        "`report` in rules/report.smk.",
        "",
        "| Item | What the paper shows | Regenerated by | Target and config | Status |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        files = "<br>".join(f"`{f}`" for f in r["files"]) or "–"
        code = "; ".join(r["code"])
        regen = f"{files}<br>({code})" if code else files
        tgt = f"`{r['target'][0]}`<br>{r['config']}" if r["target"] else "–"
        status = r["status"] + (f": {r['reason']}" if r["reason"] else "")
        lines.append(f"| {r['item']} | {r['what']} | {regen} | {tgt} | {status} |")
    lines += [
        "",
        "Algorithm 1 (Adam with the two bias-correction lines BERTAdam omits) is implemented by "
        "pipeline/optim.py, not drawn.",
    ]
    return "\n".join(lines) + "\n"


# ---- Markdown (the subset the tables use) -> HTML ------------------------------------------------


def _inline(text: str) -> str:
    t = html.escape(text, quote=False)
    t = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", t)
    t = re.sub(r"`([^`]+)`", r"<code>\1</code>", t)
    t = t.replace("&lt;br&gt;", "<br>")
    return t


def _split_row(line: str) -> list[str]:
    cells = re.split(r"(?<!\\)\|", line.strip().strip("|"))
    return [c.strip().replace("\\|", "|") for c in cells]


def md_to_html(md: str, shift: int = 1) -> str:
    out, lines, i = [], md.splitlines(), 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("#"):
            level = min(6, len(line) - len(line.lstrip("#")) + shift)
            out.append(f"<h{level}>{_inline(line.lstrip('#').strip())}</h{level}>")
        elif line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[-:| ]+\|$", lines[i + 1].strip()):
            head = _split_row(line)
            out.append(
                "<div class='tw'><table><thead><tr>"
                + "".join(f"<th>{_inline(c)}</th>" for c in head)
                + "</tr></thead><tbody>"
            )
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                out.append("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in _split_row(lines[i])) + "</tr>")
                i += 1
            out.append("</tbody></table></div>")
            continue
        elif line.startswith("- "):
            out.append("<ul>")
            while i < len(lines) and lines[i].startswith("- "):
                out.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("</ul>")
            continue
        elif line.strip():
            out.append(f"<p>{_inline(line)}</p>")
        i += 1
    return "\n".join(out)


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1200px;padding:0 1em;
color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}h3{margin-top:1.5em}
.tw{overflow-x:auto}table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
th,td{border:1px solid #ccc;padding:.3em .5em;vertical-align:top;text-align:left}th{background:#f3f3f3}
figure{margin:1.5em 0;border:1px solid #e5e5e5;padding:.8em}figure img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#333;margin-top:.4em}code{background:#f5f5f5;padding:0 .2em}
.meta{font-size:.9em;color:#555}nav ul{columns:2}.answers li{margin:.4em 0}
"""


# ---- the opening: one line per research question, figures named by what they show ------------------------


def _x100(v, sign=True) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return "–"
    return f"{100 * v:+.1f}" if sign else f"{100 * v:.1f}"


def _rq_key(rq: str):
    m = re.match(r"(\d+)(.*)", rq)
    return (int(m.group(1)), m.group(2)) if m else (10**6, rq)


def _claim_line(c: dict) -> str:
    """'<claim>: <b>verdict</b> (why): RTE +2.1 [-4.0, +8.2], ...' (effects and 1-2 alpha intervals x100)."""
    verdict = f"<strong>{html.escape(c['verdict'] or '–')}</strong>"
    if c["category"] and c["category"] != c["verdict"]:
        verdict += f" ({html.escape(c['category'])})"
    effects = [t for t in c["tasks"] if t.get("effect") is not None]
    if effects:
        level = effects[0].get("ci_level")
        parts = [f"{html.escape(TASK_NAMES.get(t['task'], t['task']))} {_x100(t['effect'])} "
                 f"[{_x100(t.get('ci_low'))}, {_x100(t.get('ci_high'))}]" for t in effects]
        detail = ", ".join(parts)
    else:
        detail = ", ".join(f"{html.escape(TASK_NAMES.get(t['task'], t['task']))} {html.escape(t.get('verdict') or '–')}"
                           for t in c["tasks"])
    return f"{html.escape(c['claim'])}: {verdict}" + (f"; {detail}" if detail else "")


def answers_html(claims: dict) -> str:
    """The report's opening: one line per research question, from tables/claims.json. A question with
    several claims lists each; sub-claims (RQ 2a, 2b) follow their question's combined verdict."""
    from .headline import headline_lines

    rows = headline_lines(claims)
    by_rq: dict = {}
    for r in rows:
        main = (re.match(r"\d+", r["rq"]) or re.match(r".*", r["rq"])).group()
        by_rq.setdefault(main, []).append(r)
    items = []
    for rq in sorted(by_rq, key=_rq_key):
        group = sorted(by_rq[rq], key=lambda r: _rq_key(r["rq"]))
        main = [r for r in group if r["rq"] == rq] or group
        subs = [r for r in group if r not in main]
        text = "; ".join(_claim_line(c) for c in main)
        if subs:
            text += " (" + "; ".join(f"{html.escape(c['rq'])} {html.escape(c['claim'][0].lower() + c['claim'][1:])}: "
                                     f"{html.escape(c['verdict'])}" for c in subs) + ")"
        items.append(f"<li><strong>RQ {html.escape(rq)}</strong>: {text}</li>")
    levels = {t.get("ci_level") for r in rows for t in r["tasks"] if t.get("ci_level")}
    level = f"{100 * levels.pop():.0f}% " if len(levels) == 1 else ""
    return ("<section id='answers'><h2>Answers</h2><p>One line per research question: this study's verdict on "
            f"each claim, then per task the effect and the deciding test's {level}interval [low, high] (x100, "
            "treatment minus baseline). The claims table below has every number, the test and the power."
            "</p><ul class='answers'>" + "".join(items) + "</ul></section>")


# What each figure shows, for the contents and the captions (file names say little to a reader). Keys:
# the figures of plan.FIGURES (tests/test_report_opening.py checks every one has a title).
FIGURE_TITLES = {
    "fig01_bias_ratio": "How much larger BERTAdam's early updates are than bias-corrected Adam's",
    "fig02_optimiser_test": "Test metric of every run, BERTAdam vs debiased Adam",
    "fig03_train_loss_optimiser": "Training loss per step, BERTAdam vs debiased Adam",
    "fig_test_by_condition": "Test metric of every run, per condition and task",
    "fig04_expected_test": "Expected test metric of the best of k trials",
    "fig12_expected_val": "Expected validation metric of the best of k trials",
    "fig05_reinit_val": "Validation metric per number of re-initialised layers",
    "fig05b_metric_vs_layers": "Validation and test metric against the number of re-initialised layers",
    "fig06_train_loss_reinit": "Training loss per step, Standard vs Re-init",
    "fig07_drift_steps": "Weight drift of each block during training, Standard vs Re-init",
    "fig07b_drift_depth": "Weight drift against depth at the end of training",
    "fig08_val_curves": "Validation metric during training, Standard vs Re-init",
    "fig08b_metric_vs_steps": "Validation metric against the length of training, Standard vs Re-init",
    "fig09_seed_grid": "Validation metric over initialisation seed x data-order seed",
    "fig10_seed_std": "Spread across seeds with one of the two seeds fixed",
    "fig10b_spread_sources": "Sources of the spread across runs, the training subset included",
}


def figure_title(name: str, label: str = "") -> str:
    """'What it shows (paper item)': FIGURE_TITLES, else the paper item's description (PAPER_ITEMS)."""
    fig = next((f for f in FIGURES if f.name == name), None)
    label = label or (fig.label if fig else "")
    title = FIGURE_TITLES.get(name)
    if title is None:
        whats = {item: what for item, what, *_ in PAPER_ITEMS}
        covered = [c.partition("@")[0] for c in (fig.covers if fig else ())]
        title = whats.get(covered[0], name) if covered else (label.strip("()") or name)
        title = title[0].upper() + title[1:]
    return title if not label or label.startswith("(") else f"{title} ({label})"


def run_report(cfg: dict, root, tables_dir, figures_dir, out_html, paper_map) -> None:
    """Write report.html (self-contained) and paper_map.md."""
    from .config import config_hash

    cfg = dict(cfg)
    cfg.setdefault("_config_hash", config_hash({k: v for k, v in cfg.items() if k != "_config_hash"}))
    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    tindex = json.loads((tables_dir / "index.json").read_text())["tables"]
    findex = json.loads((figures_dir / "index.json").read_text())["figures"]
    rows = paper_map_rows(cfg, tables_dir, figures_dir, Path(paper_map).parent)
    pm = paper_map_markdown(cfg, rows)
    atomic_write_text(paper_map, pm)

    a = cfg["analysis"]
    name = cfg["study"]["name"]
    from .config import run_grid

    grid = run_grid(cfg)
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>Report: study {html.escape(name)}</title>",
        f"<style>{CSS}</style></head><body>",
        f"<h1>Revisiting Few-sample BERT Fine-tuning: study <code>{html.escape(name)}</code></h1>",
        f"<p class='meta'>Config hash <code>{html.escape(cfg['_config_hash'])}</code> · model "
        f"<code>{html.escape(str(cfg['train']['model']))}</code> · tasks "
        f"{html.escape(', '.join(cfg['study']['tasks']))} · {len(grid)} runs · report seeds "
        f"{html.escape(', '.join(a['report_seeds']))}, selection seeds "
        f"{html.escape(', '.join(a['selection_seeds']))} · alpha {a['alpha']} (one-tailed), "
        f"power {a['power']} · configuration {html.escape(_config_file(cfg))}</p>",
        "<p>All numbers come from the run records of this study. Settings are chosen on validation only; test "
        "metrics are reported, never used to choose. Tables show x100, figures the 0-1 scale.</p>",
    ]
    claims_json = tables_dir / "claims.json"
    if claims_json.is_file():
        parts.append(answers_html(json.loads(claims_json.read_text())))
    parts.append("<nav><h2>Contents</h2><ul><li><a href='#claims'>Claims</a></li>")
    for t in tindex:
        if t["name"] != "claims":
            parts.append(f"<li><a href='#table-{t['name']}'>{html.escape(t['title'])}</a></li>")
    for f in findex:
        title = figure_title(f["name"], f.get("paper_item", ""))
        parts.append(f"<li><a href='#fig-{f['name']}'>{html.escape(title)}</a></li>")
    parts.append("<li><a href='#paper-map'>Paper map</a></li></ul></nav>")
    by_name = {t["name"]: t for t in tindex}
    if "claims" in by_name:
        parts.append("<section id='claims'><h2>Claims: verdicts per research question</h2>")
        parts.append(md_to_html((tables_dir / "claims.md").read_text(), shift=2))
        parts.append("</section>")
    parts.append("<h2>Tables</h2>")
    for t in tindex:
        if t["name"] == "claims":
            continue
        parts.append(f"<section id='table-{t['name']}'>")
        md = (tables_dir / t["files"]["md"]).read_text()
        parts.append(md_to_html(md, shift=2))
        parts.append(
            f"<p class='meta'>Paper: {html.escape(t.get('paper_item') or '–')} · files "
            f"{html.escape(', '.join(t['files'].values()))}</p></section>"
        )
    parts.append("<h2>Figures</h2>")
    for f in findex:
        data = base64.b64encode((figures_dir / f["png"]).read_bytes()).decode("ascii")
        parts.append(
            f"<figure id='fig-{f['name']}'><img alt='{html.escape(f['name'])}' "
            f'src="data:image/png;base64,{data}">'
            f"<figcaption><strong>{html.escape(figure_title(f['name'], f.get('paper_item', '')))}</strong> "
            f"({html.escape(f['png'])}). {html.escape(f['caption'])} Numbers plotted: {html.escape(f['csv'])}."
            f"</figcaption></figure>"
        )
    parts.append("<section id='paper-map'>")
    parts.append(md_to_html(pm, shift=1))
    parts.append("</section></body></html>")
    atomic_write_text(out_html, "\n".join(parts) + "\n")
