# Runs -> runs.csv, curves, drift -> metrics.json (DVC) -> statistics, tables, figures, report.

rule study_config:
    output:
        f"{ROOT}/study.json",
    params:
        cfg=lambda w: canonical(config),
    shell:
        "{PY:q} -m pipeline study --json {params.cfg:q} --out {output:q}"


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
    params:
        out=lambda w, output: os.path.dirname(output.runs),
    log:
        f"{ROOT}/logs/aggregate.log",
    shell:
        "{PY:q} -m pipeline aggregate --study {input.study:q} --root {ROOT:q} "
        "--out {params.out:q} 2> {log:q}"


rule metrics:
    output:
        f"{ROOT}/metrics.json",
    input:
        runs=rules.aggregate.output.runs,
        code=["pipeline/aggregate.py"],
    shell:
        "{PY:q} -m pipeline metrics --runs {input.runs:q} --out {output:q}"


rule provenance:
    output:
        f"{ROOT}/provenance.json",
    input:
        runs=rules.aggregate.output.runs,
        metrics=rules.metrics.output[0],
        study=rules.study_config.output,
        code=["pipeline/provenance.py", "pipeline/commands_analysis.py"],
    shell:
        "{PY:q} -m pipeline provenance --study {input.study:q} --root {ROOT:q} --runs {input.runs:q} "
        "--metrics {input.metrics:q} --out {output:q}"


ANALYSIS_OUTPUTS = [rules.metrics.output[0], rules.aggregate.output.curves, rules.provenance.output[0]]


# Pseudo-targets for the DVC stages (dvc.yaml): each DVC stage runs one of these.
rule prepare:
    input:
        FEATURES,


rule runs:
    input:
        RUN_RECORDS,
