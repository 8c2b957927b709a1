# One job per (task, condition, seed). Its params carry the run's resolved settings as one canonical
# JSON string, so editing one condition reruns exactly that condition's runs.
from pipeline.config import expand_conditions, intermediate_settings
from pipeline.tasks import canonical_task


def run_extra_inputs(w):
    """A selected condition reads its family's selection file; intermediate-task transfer starts
    from the intermediate model of the same seed."""
    s = run_settings(w)
    extra = {}
    if s.get("select"):
        extra["selection"] = f"{ROOT}/selection/{w.task}/{s['select']}.json"
    if s.get("intermediate_task"):
        extra["init"] = f"{ROOT}/intermediate/{canonical_task(s['intermediate_task'])}/seed{w.seed}/model.safetensors"
    return extra


def extra_flags(w, input):
    flags = []
    if "selection" in input.keys():
        flags.append(f"--selection {input.selection}")
    if "init" in input.keys():
        flags.append(f"--init-weights {input.init}")
    return " ".join(flags)


rule finetune:
    output:
        record=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/record.json",
        curve=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/curve.csv",
        drift=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/drift.csv",
        updates=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/updates.csv",
    input:
        unpack(run_extra_inputs),
        features=features_path,
        code=ENGINE,
    params:
        settings=lambda w: canonical(run_settings(w)),
        extra=extra_flags,
    threads: config["study"].get("finetune_threads", 1)
    resources:
        mem_mb=4000,
    log:
        f"{ROOT}/logs/runs/{{task}}/{{condition}}/seed{{seed}}.log",
    shell:
        "{PY} -m pipeline finetune --settings {params.settings:q} --features {input.features} "
        "{params.extra} --threads {threads} --out $(dirname {output.record}) 2> {log}"


def intermediate_features(w):
    s = intermediate_settings(config, w.task, int(w.seed))
    return f"{ROOT}/features/{w.task}/{model_tag(s['model'], s['max_seq_length'])}.pt"


rule intermediate:
    output:
        model=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/model.safetensors",
        record=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/record.json",
    input:
        features=intermediate_features,
        code=ENGINE,
    params:
        settings=lambda w: canonical(intermediate_settings(config, w.task, int(w.seed))),
    threads: config["study"].get("finetune_threads", 1)
    resources:
        mem_mb=4000,
    log:
        f"{ROOT}/logs/intermediate/{{task}}/seed{{seed}}.log",
    shell:
        "{PY} -m pipeline finetune --settings {params.settings:q} --features {input.features} "
        "--threads {threads} --out $(dirname {output.model}) 2> {log}"


def family_candidates(family):
    """[{name, overrides}] of a sweep family, in the order its values are listed."""
    expanded = expand_conditions(config["conditions"])
    return [{"name": m, "overrides": {k: v for k, v in expanded[m].items() if k not in ("family", "description")}}
            for m in sweep_families(config["conditions"])[family]]


def selection_records(w):
    members = sweep_families(config["conditions"])[w.family]
    return [f"{run_dir(t, c, s)}/record.json" for t, c, s in GRID if t == w.task and c in members]


rule select:
    output:
        f"{ROOT}/selection/{{task}}/{{family}}.json",
    input:
        records=selection_records,
        code=["pipeline/select.py", "pipeline/commands_analysis.py"],
    params:
        candidates=lambda w: canonical(family_candidates(w.family)),
    log:
        f"{ROOT}/logs/selection/{{task}}/{{family}}.log",
    shell:
        "{PY} -m pipeline select --candidates {params.candidates:q} --task {wildcards.task} "
        "--family {wildcards.family} --records {input.records} --out {output} 2> {log}"
