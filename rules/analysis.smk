# Runs -> runs.csv, curves, drift -> metrics.json (DVC) -> statistics, tables, figures, report.


rule study_config:
    input:
        code=code_stamp("study"),
    output:
        f"{ROOT}/study.json",
    log:
        f"{ROOT}/logs/study.log",
    params:
        cfg=lambda w: canonical(config),
    shell:
        "python -m pipeline study --json {params.cfg:q} --out {output:q} 2> {log:q}"


rule aggregate:
    input:
        records=RUN_RECORDS,
        # a plain path, not rules.study_config.output: a rule reference makes Snakemake hash the whole
        # record list once per record when it builds this job (quadratic: 20 s on the paper's grid)
        study=f"{ROOT}/study.json",
        code=code_stamp("aggregate"),
    output:
        runs=f"{ROOT}/summary/runs.csv",
        curves=f"{ROOT}/summary/curves.csv",
        drift=f"{ROOT}/summary/drift.csv",
        timing=f"{ROOT}/summary/timing.csv",
    log:
        f"{ROOT}/logs/aggregate.log",
    params:
        root=lambda w: ROOT,
        out=lambda w, output: os.path.dirname(output.runs),
    shell:
        "python -m pipeline aggregate --study {input.study:q} --root {params.root:q} "
        "--out {params.out:q} 2> {log:q}"


rule metrics:
    input:
        runs=rules.aggregate.output.runs,
        code=code_stamp("metrics"),
    output:
        f"{ROOT}/metrics.json",
    log:
        f"{ROOT}/logs/metrics.log",
    shell:
        "python -m pipeline metrics --runs {input.runs:q} --out {output:q} 2> {log:q}"


rule provenance:
    input:
        runs=rules.aggregate.output.runs,
        metrics=rules.metrics.output[0],
        study=rules.study_config.output,
        code=code_stamp("provenance"),
    output:
        f"{ROOT}/provenance.json",
    log:
        f"{ROOT}/logs/provenance.log",
    params:
        root=lambda w: ROOT,
    shell:
        "python -m pipeline provenance --study {input.study:q} --root {params.root:q} "
        "--runs {input.runs:q} --metrics {input.metrics:q} --out {output:q} 2> {log:q}"
