# Statistics, tables, claims, figures and the HTML report, from the aggregate stage's summaries.
# Outputs are explicit file lists planned from the configuration (pipeline/plan.py): no
# checkpoints, no directory outputs, so `snakemake -n` shows every table and figure of the study.
# Each rule's code is its command's stamp (rules/common.smk), so editing a figure module reruns the
# figures and the report only.
from pipeline.plan import figure_files, roles, selected_families, stats_files, table_files

STATS_DIR = f"{ROOT}/stats"
TABLES_DIR = f"{ROOT}/tables"
FIGURES_DIR = f"{ROOT}/figures"
STUDY_DATASETS = [dataset_name(config, t) for t in config["study"]["tasks"]]
SELECTION_FILES = [f"{ROOT}/selection/{t}/{fam}.json" for t, fam in selected_families(config)]
SPLIT_METAS = [f"{ROOT}/splits/{t}/meta.json" for t in STUDY_DATASETS]
_OPT = {roles(config)["bertadam"], roles(config)["debiased"]}
UPDATE_LOGS = [f"{run_dir(t, c, s)}/updates.csv" for t, c, s in GRID if c in _OPT]


rule analyze:
    input:
        runs=rules.aggregate.output.runs,
        study=rules.study_config.output,
        selection=SELECTION_FILES,
        splits=SPLIT_METAS,
        code=code_stamp("analyze"),
    output:
        stats=stats_files(STATS_DIR),
        tables=table_files(config, TABLES_DIR),
    log:
        f"{ROOT}/logs/analyze.log",
    params:
        root=lambda w: ROOT,
        stats=lambda w: STATS_DIR,
        tables=lambda w: TABLES_DIR,
    shell:
        "python -m pipeline analyze --study {input.study:q} --root {params.root:q} --runs {input.runs:q} "
        "--stats {params.stats:q} --tables {params.tables:q} 2> {log:q}"


rule claims_metrics:
    input:
        claims=f"{TABLES_DIR}/claims.json",
        code=code_stamp("pipeline.headline"),
    output:
        f"{ROOT}/claims_metrics.json",
    log:
        f"{ROOT}/logs/claims_metrics.log",
    shell:
        "python -m pipeline.headline --claims {input.claims:q} --out {output:q} 2> {log:q}"


rule figures:
    input:
        flagged=f"{STATS_DIR}/runs_flagged.csv",
        curves=rules.aggregate.output.curves,
        drift=rules.aggregate.output.drift,
        study=rules.study_config.output,
        updates=UPDATE_LOGS,
        code=code_stamp("figures"),
    output:
        figure_files(config, FIGURES_DIR),
    log:
        f"{ROOT}/logs/figures.log",
    params:
        root=lambda w: ROOT,
        out=lambda w: FIGURES_DIR,
    shell:
        "python -m pipeline figures --study {input.study:q} --root {params.root:q} "
        "--runs-flagged {input.flagged:q} --curves {input.curves:q} --drift {input.drift:q} "
        "--out {params.out:q} 2> {log:q}"


rule report:
    input:
        tables=rules.analyze.output.tables,
        figures=rules.figures.output,
        study=rules.study_config.output,
        code=code_stamp("report"),
    output:
        html=f"{ROOT}/report.html",
        paper_map=f"{ROOT}/paper_map.md",
    log:
        f"{ROOT}/logs/report.log",
    params:
        root=lambda w: ROOT,
        tables=lambda w: TABLES_DIR,
        figures=lambda w: FIGURES_DIR,
    shell:
        "python -m pipeline report --study {input.study:q} --root {params.root:q} --tables {params.tables:q} "
        "--figures {params.figures:q} --out {output.html:q} --paper-map {output.paper_map:q} 2> {log:q}"
