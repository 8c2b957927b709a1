# GLUE rows -> normalised rows -> fixed splits -> tokenised features (once per task and model).


rule data:
    input:
        code=code_stamp("data"),
    output:
        train=f"{ROOT}/data/{{gtask}}/train.jsonl",
        dev=f"{ROOT}/data/{{gtask}}/dev.jsonl",
        meta=f"{ROOT}/data/{{gtask}}/meta.json",
    log:
        f"{ROOT}/logs/data/{{gtask}}.log",
    params:
        # two arguments, each quoted by {:q} (a path with spaces or shell characters is one argument);
        # none when data.glue_dir is null
        glue_dir=lambda w: (["--glue-dir", config["data"]["glue_dir"]] if config["data"]["glue_dir"] else []),
        out=lambda w, output: os.path.dirname(output.train),
    shell:
        "python -m pipeline data --task {wildcards.gtask:q} {params.glue_dir:q} "
        "--out {params.out:q} 2> {log:q}"


rule splits:
    input:
        train=lambda w: f"{ROOT}/data/{glue_task_of(config, w.task)}/train.jsonl",
        dev=lambda w: f"{ROOT}/data/{glue_task_of(config, w.task)}/dev.jsonl",
        code=code_stamp("splits"),
    output:
        train=f"{ROOT}/splits/{{task}}/train.jsonl",
        val=f"{ROOT}/splits/{{task}}/val.jsonl",
        test=f"{ROOT}/splits/{{task}}/test.jsonl",
        meta=f"{ROOT}/splits/{{task}}/meta.json",
    log:
        f"{ROOT}/logs/splits/{{task}}.log",
    params:
        settings=lambda w: canonical(split_settings(config, w.task)),
        glue=lambda w: glue_task_of(config, w.task),
        data=lambda w, input: os.path.dirname(input.train),
        out=lambda w, output: os.path.dirname(output.train),
    shell:
        "python -m pipeline splits --task {params.glue:q} --data {params.data:q} "
        "--settings {params.settings:q} --out {params.out:q} 2> {log:q}"


rule features:
    input:
        splits=rules.splits.output,
        code=code_stamp("features"),
    output:
        f"{ROOT}/features/{{task}}/{{tag}}.pt",
    log:
        f"{ROOT}/logs/features/{{task}}/{{tag}}.log",
    benchmark:
        f"{ROOT}/benchmarks/features/{{task}}/{{tag}}.tsv"
    params:
        model=lambda w: FEATURE_MODELS[(w.task, w.tag)],
        glue=lambda w: glue_task_of(config, w.task),
        max_len=lambda w: w.tag.rsplit("-", 1)[1],
        splits=lambda w, input: os.path.dirname(input.splits[0]),
    shell:
        "python -m pipeline features --task {params.glue:q} --splits {params.splits:q} "
        "--model {params.model:q} --max-seq-length {params.max_len:q} --out {output:q} 2> {log:q}"
