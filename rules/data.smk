# GLUE rows -> normalised rows -> fixed splits -> tokenised features (once per task and model).

rule data:
    output:
        train=f"{ROOT}/data/{{task}}/train.jsonl",
        dev=f"{ROOT}/data/{{task}}/dev.jsonl",
        meta=f"{ROOT}/data/{{task}}/meta.json",
    input:
        DATA_CODE,
    params:
        glue_dir=lambda w: f"--glue-dir {config['data']['glue_dir']}" if config["data"]["glue_dir"] else "",
    log:
        f"{ROOT}/logs/data/{{task}}.log",
    shell:
        "{PY} -m pipeline data --task {wildcards.task} {params.glue_dir} "
        "--out $(dirname {output.train}) 2> {log}"


rule splits:
    output:
        train=f"{ROOT}/splits/{{task}}/train.jsonl",
        val=f"{ROOT}/splits/{{task}}/val.jsonl",
        test=f"{ROOT}/splits/{{task}}/test.jsonl",
        meta=f"{ROOT}/splits/{{task}}/meta.json",
    input:
        train=rules.data.output.train,
        dev=rules.data.output.dev,
        code=DATA_CODE,
    params:
        settings=lambda w: canonical(split_settings(config, w.task)),
    log:
        f"{ROOT}/logs/splits/{{task}}.log",
    shell:
        "{PY} -m pipeline splits --task {wildcards.task} --data $(dirname {input.train}) "
        "--settings {params.settings:q} --out $(dirname {output.train}) 2> {log}"


rule features:
    output:
        f"{ROOT}/features/{{task}}/{{tag}}.pt",
    input:
        splits=rules.splits.output,
        code=["pipeline/features.py", "pipeline/model.py"],
    params:
        model=lambda w: features_model(w.task, w.tag),
        max_len=lambda w: w.tag.rsplit("-", 1)[1],
    log:
        f"{ROOT}/logs/features/{{task}}/{{tag}}.log",
    shell:
        "{PY} -m pipeline features --task {wildcards.task} --splits $(dirname {input.splits[0]}) "
        "--model {params.model:q} --max-seq-length {params.max_len} --out {output} 2> {log}"


def features_model(task, tag):
    """The model name behind a features tag, from the runs that use it."""
    for t, c, s in GRID:
        if t == task:
            st = resolve_settings(config, t, c, s)
            if model_tag(st["model"], st["max_seq_length"]) == tag:
                return st["model"]
    raise ValueError(f"no run of {task} uses features {tag}")
