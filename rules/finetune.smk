# One job per (task, condition, seed). Its params carry the run's resolved settings as one canonical
# JSON string, so editing one condition reruns exactly that condition's runs.
import shlex

from pipeline.config import expand_conditions, intermediate_settings
from pipeline.tasks import canonical_task


@functools.lru_cache(maxsize=None)
def run_inputs_of(task, condition, seed):
    """A run reads its task's features; a selected condition also its family's selection file, and
    intermediate-task transfer the intermediate model of the same seed."""
    s = settings_of(task, condition, seed)
    inputs = {"features": features_for(task, condition, seed)}
    if s.get("select"):
        inputs["selection"] = f"{ROOT}/selection/{task}/{s['select']}.json"
    if s.get("intermediate_task"):
        inputs["init"] = f"{ROOT}/intermediate/{canonical_task(s['intermediate_task'])}/seed{seed}/model.safetensors"
    return inputs


@functools.lru_cache(maxsize=None)
def run_args_of(task, condition, seed):
    """The run's command-line arguments, every value shell-quoted (the rule passes this string as it is):
    its resolved settings as one canonical JSON string, and its inputs. One string, not a list for {:q}:
    the params trigger compares this value, and quoting leaves a safe path unchanged."""
    inputs = run_inputs_of(task, condition, seed)
    args = [f"--settings {shlex.quote(canonical(dict(settings_of(task, condition, seed))))}",
            f"--features {shlex.quote(inputs['features'])}"]
    if "selection" in inputs:
        args.append(f"--selection {shlex.quote(inputs['selection'])}")
    if "init" in inputs:
        args.append(f"--init-weights {shlex.quote(inputs['init'])}")
    return " ".join(args)


# Planning cost is per job and per input or param function (the paper grid has 6,446 runs): one of each,
# cached per run.
def run_inputs(w):
    return dict(run_inputs_of(w.task, w.condition, int(w.seed)))


def run_args(w):
    return run_args_of(w.task, w.condition, int(w.seed))


rule finetune:
    output:
        record=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/record.json",
        curve=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/curve.csv",
        drift=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/drift.csv",
        updates=f"{ROOT}/runs/{{task}}/{{condition}}/seed{{seed}}/updates.csv",
    input:
        unpack(run_inputs),
        engine=ENGINE_STAMP,
    params:
        args=run_args,  # already quoted (run_args_of): never {:q} it
        out=lambda w, output: os.path.dirname(output.record),
    threads: config["study"]["finetune_threads"]
    resources:
        mem_mb=4000,
    log:
        f"{ROOT}/logs/runs/{{task}}/{{condition}}/seed{{seed}}.log",
    shell:
        "{PY:q} -m pipeline finetune {params.args} --threads {threads:q} --out {params.out:q} 2> {log:q}"


def intermediate_features(w):
    s = intermediate_settings(config, w.task, int(w.seed))
    return f"{ROOT}/features/{w.task}/{model_tag(s['model'], s['max_seq_length'])}.pt"


rule intermediate:
    output:
        model=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/model.safetensors",
        record=f"{ROOT}/intermediate/{{task}}/seed{{seed}}/record.json",
    input:
        features=intermediate_features,
        engine=ENGINE_STAMP,
    params:
        settings=lambda w: canonical(intermediate_settings(config, w.task, int(w.seed))),
        out=lambda w, output: os.path.dirname(output.model),
    threads: config["study"]["finetune_threads"]
    resources:
        mem_mb=4000,
    log:
        f"{ROOT}/logs/intermediate/{{task}}/seed{{seed}}.log",
    shell:
        "{PY:q} -m pipeline finetune --settings {params.settings:q} --features {input.features:q} "
        "--threads {threads:q} --out {params.out:q} 2> {log:q}"


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
        "{PY:q} -m pipeline select --candidates {params.candidates:q} --task {wildcards.task:q} "
        "--family {wildcards.family:q} --records {input.records:q} --out {output:q} 2> {log:q}"
