# Statistics, tables, claims, figures and the HTML report, from the aggregate stage's summaries.
# Outputs are explicit file lists planned from the configuration (pipeline/plan.py): no
# checkpoints, no directory outputs, so `snakemake -n` shows every table and figure of the study.
# Each rule lists the modules it imports, so editing a figure module reruns figures and report only.
from pipeline.plan import (figure_files, planned_figures, planned_tables, roles, selected_families, stats_files,
                           table_files)

STATS_DIR = f"{ROOT}/stats"
TABLES_DIR = f"{ROOT}/tables"
FIGURES_DIR = f"{ROOT}/figures"

ANALYZE_CODE = [f"pipeline/{m}" for m in ("analysis.py", "analysis_cli.py", "plan.py", "degenerate.py", "select.py",
                                           "reported.py", "reported.yaml", "stats.py", "claims.py", "tableformat.py",
                                           "tables.py", "config.py", "tasks.py", "io.py")]
FIGURES_CODE = [f"pipeline/{m}" for m in ("figures.py", "analysis_cli.py", "plan.py", "stats.py", "config.py",
                                           "tasks.py", "io.py")]
REPORT_CODE = [f"pipeline/{m}" for m in ("report.py", "analysis_cli.py", "plan.py", "config.py", "tasks.py", "io.py")]

STUDY_DATASETS = [dataset_name(config, t) for t in config["study"]["tasks"]]
SELECTION_FILES = [f"{ROOT}/selection/{t}/{fam}.json" for t, fam in selected_families(config)]
SPLIT_METAS = [f"{ROOT}/splits/{t}/meta.json" for t in STUDY_DATASETS]
_OPT = {roles(config)["bertadam"], roles(config)["debiased"]}
UPDATE_LOGS = [f"{run_dir(t, c, s)}/updates.csv" for t, c, s in GRID if c in _OPT]


rule analyze:
    output:
        stats=stats_files(STATS_DIR),
        tables=table_files(config, TABLES_DIR),
    input:
        runs=rules.aggregate.output.runs,
        study=rules.study_config.output,
        selection=SELECTION_FILES,
        splits=SPLIT_METAS,
        code=ANALYZE_CODE,
    log:
        f"{ROOT}/logs/analyze.log",
    shell:
        "{PY:q} -m pipeline analyze --study {input.study:q} --root {ROOT:q} --runs {input.runs:q} "
        "--stats {STATS_DIR:q} --tables {TABLES_DIR:q} 2> {log:q}"


rule figures:
    output:
        figure_files(config, FIGURES_DIR),
    input:
        flagged=f"{STATS_DIR}/runs_flagged.csv",
        curves=rules.aggregate.output.curves,
        drift=rules.aggregate.output.drift,
        study=rules.study_config.output,
        updates=UPDATE_LOGS,
        code=FIGURES_CODE,
    log:
        f"{ROOT}/logs/figures.log",
    shell:
        "{PY:q} -m pipeline figures --study {input.study:q} --root {ROOT:q} --runs-flagged {input.flagged:q} "
        "--curves {input.curves:q} --drift {input.drift:q} --out {FIGURES_DIR:q} 2> {log:q}"


rule report:
    output:
        html=f"{ROOT}/report.html",
        paper_map=f"{ROOT}/paper_map.md",
    input:
        tables=rules.analyze.output.tables,
        figures=rules.figures.output,
        study=rules.study_config.output,
        code=REPORT_CODE,
    log:
        f"{ROOT}/logs/report.log",
    shell:
        "{PY:q} -m pipeline report --study {input.study:q} --root {ROOT:q} --tables {TABLES_DIR:q} "
        "--figures {FIGURES_DIR:q} --out {output.html:q} --paper-map {output.paper_map:q} 2> {log:q}"


localrules: analyze, figures, report

# The final files of the analysis stage (add to `rule all`): the report, the paper map, the claims,
# every table and every figure with its data.
REPORT_OUTPUTS = ([rules.report.output.html, rules.report.output.paper_map, f"{TABLES_DIR}/claims.md"]
                  + table_files(config, TABLES_DIR) + figure_files(config, FIGURES_DIR))
