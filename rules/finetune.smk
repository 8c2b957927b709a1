# One job per (task, condition, seed). Its params carry the run's resolved settings as one canonical
# JSON string, so editing one condition reruns exactly that condition's runs.

rule finetune:
    output:
        record=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/record.json",
        curve=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/curve.csv",
        drift=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/drift.csv",
    input:
        features=features_path,
        code=ENGINE,
    params:
        settings=lambda w: canonical(run_settings(w)),
    threads: config["study"].get("finetune_threads", 1)
    resources:
        mem_mb=4000,
    log:
        f"{ROOT}/logs/runs/{{task}}/{{condition}}/seed{{seed}}.log",
    shell:
        "{PY} -m pipeline finetune --settings {params.settings:q} --features {input.features} "
        "--threads {threads} --out $(dirname {output.record}) 2> {log}"
