# One job per (task, condition, seed). Its params carry the run's resolved settings as one canonical
# JSON string, so editing one condition reruns exactly that condition's runs; its code is one stamp
# (rules/common.smk code_stamp), so editing any module the engine imports reruns every run.
# The run prints one line when it finishes (task, condition, seed, score, time: the console of a study);
# its progress and loss go to the log file.


rule finetune:
    input:
        unpack(run_inputs),
        code=code_stamp("finetune"),
    output:
        record=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/record.json",
        curve=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/curve.csv",
        drift=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/drift.csv",
        updates=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/updates.csv",
    log:
        f"{ROOT}/logs/runs/{{task}}/{{condition}}/seed{{seed}}.log",
    benchmark:
        f"{ROOT}/benchmarks/runs/{{task}}/{{condition}}/seed{{seed}}.tsv"
    threads: config["study"]["finetune_threads"]
    params:
        args=run_args,  # already quoted (run_args_of), --out included: never {:q} it
    shell:
        "python -m pipeline finetune {params.args} --threads {threads:q} 2> {log:q}"


rule intermediate:
    input:
        features=intermediate_features,
        code=code_stamp("finetune"),
    output:
        model=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/model.safetensors",
        record=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/record.json",
    log:
        f"{ROOT}/logs/intermediate/{{task}}/seed{{seed}}.log",
    benchmark:
        f"{ROOT}/benchmarks/intermediate/{{task}}/seed{{seed}}.tsv"
    threads: config["study"]["finetune_threads"]
    params:
        settings=lambda w: canonical(intermediate_settings(config, w.task, int(w.seed))),
        out=lambda w, output: os.path.dirname(output.model),
    shell:
        "python -m pipeline finetune --settings {params.settings:q} --features {input.features:q} "
        "--threads {threads:q} --out {params.out:q} 2> {log:q}"


rule select:
    input:
        records=selection_records,
        code=code_stamp("select"),
    output:
        f"{ROOT}/selection/{{task}}/{{family}}.json",
    log:
        f"{ROOT}/logs/selection/{{task}}/{{family}}.log",
    params:
        candidates=lambda w: canonical(family_candidates(w.family)),
    shell:
        "python -m pipeline select --candidates {params.candidates:q} --task {wildcards.task:q} "
        "--family {wildcards.family:q} --records {input.records:q} --out {output:q} 2> {log:q}"
