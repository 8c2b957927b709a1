# GLUE rows -> normalised rows -> fixed splits -> tokenised features (once per task and model).

rule data:
    output:
        train=f"{ROOT}/data/{{gtask}}/train.jsonl",
        dev=f"{ROOT}/data/{{gtask}}/dev.jsonl",
        meta=f"{ROOT}/data/{{gtask}}/meta.json",
    input:
        DATA_CODE,
    params:
        glue_dir=lambda w: f"--glue-dir {config['data']['glue_dir']}" if config["data"]["glue_dir"] else "",
    log:
        f"{ROOT}/logs/data/{{gtask}}.log",
    shell:
        "{PY} -m pipeline data --task {wildcards.gtask} {params.glue_dir} "
        "--out $(dirname {output.train}) 2> {log}"


rule splits:
    output:
        train=f"{ROOT}/splits/{{task}}/train.jsonl",
        val=f"{ROOT}/splits/{{task}}/val.jsonl",
        test=f"{ROOT}/splits/{{task}}/test.jsonl",
        meta=f"{ROOT}/splits/{{task}}/meta.json",
    input:
        train=lambda w: f"{ROOT}/data/{glue_task_of(config, w.task)}/train.jsonl",
        dev=lambda w: f"{ROOT}/data/{glue_task_of(config, w.task)}/dev.jsonl",
        code=DATA_CODE,
    params:
        settings=lambda w: canonical(split_settings(config, w.task)),
        glue=lambda w: glue_task_of(config, w.task),
    log:
        f"{ROOT}/logs/splits/{{task}}.log",
    shell:
        "{PY} -m pipeline splits --task {params.glue} --data $(dirname {input.train}) "
        "--settings {params.settings:q} --out $(dirname {output.train}) 2> {log}"


rule features:
    output:
        f"{ROOT}/features/{{task}}/{{tag}}.pt",
    input:
        splits=rules.splits.output,
        code=["pipeline/prepare.py", "pipeline/features.py", "pipeline/model.py"],
    params:
        model=lambda w: FEATURE_MODELS[(w.task, w.tag)],
        glue=lambda w: glue_task_of(config, w.task),
        max_len=lambda w: w.tag.rsplit("-", 1)[1],
    log:
        f"{ROOT}/logs/features/{{task}}/{{tag}}.log",
    shell:
        "{PY} -m pipeline features --task {params.glue} --splits $(dirname {input.splits[0]}) "
        "--model {params.model:q} --max-seq-length {params.max_len} --out {output} 2> {log}"
