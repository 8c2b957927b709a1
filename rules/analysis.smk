# Runs -> runs.csv, curves, drift -> metrics.json (DVC) -> statistics, tables, figures, report.

rule study_config:
    output:
        f"{ROOT}/study.json",
    params:
        cfg=lambda w: canonical(config),
    shell:
        "{PY} -m pipeline study --json {params.cfg:q} --out {output}"


rule aggregate:
    output:
        runs=f"{ROOT}/summary/runs.csv",
        curves=f"{ROOT}/summary/curves.csv",
        drift=f"{ROOT}/summary/drift.csv",
    input:
        records=RUN_RECORDS,
        # a plain path, not rules.study_config.output: a rule reference makes Snakemake hash the whole
        # record list once per record when it builds this job (quadratic: 20 s on the paper's grid)
        study=f"{ROOT}/study.json",
        code=["pipeline/aggregate.py", "pipeline/commands_analysis.py"],
    log:
        f"{ROOT}/logs/aggregate.log",
    shell:
        "{PY} -m pipeline aggregate --study {input.study} --root {ROOT} "
        "--out $(dirname {output.runs}) 2> {log}"


rule metrics:
    output:
        f"{ROOT}/metrics.json",
    input:
        runs=rules.aggregate.output.runs,
        code=["pipeline/aggregate.py"],
    shell:
        "{PY} -m pipeline metrics --runs {input.runs} --out {output}"


rule provenance:
    output:
        f"{ROOT}/provenance.json",
    input:
        runs=rules.aggregate.output.runs,
        metrics=rules.metrics.output[0],
        study=rules.study_config.output,
        code=["pipeline/provenance.py", "pipeline/commands_analysis.py"],
    shell:
        "{PY} -m pipeline provenance --study {input.study} --root {ROOT} --runs {input.runs} "
        "--metrics {input.metrics} --out {output}"


ANALYSIS_OUTPUTS = [rules.metrics.output[0], rules.aggregate.output.curves, rules.provenance.output[0]]


# Pseudo-targets for the DVC stages (dvc.yaml): each DVC stage runs one of these.
rule prepare:
    input:
        FEATURES,


rule runs:
    input:
        RUN_RECORDS,
