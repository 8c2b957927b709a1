"""Benchmark: our fine-tuning engine against Hugging Face Trainer and against the hardware.

    .venv/bin/python bench/finetune.py                      # the full comparison (< 10 min here)
    .venv/bin/python bench/finetune.py --tasks rte --steps 2 --full-run tiny --no-pipeline   # smoke

For the embedded model (minilm-l6) on RTE, MRPC, STS-B and CoLA at the default study's settings
(params.yaml, resolved per task exactly as a study job resolves them; condition `debiased`, seed 0),
one thread (torch.set_num_threads(1) for both frameworks), it measures:

1. Training throughput on identical work: the first --steps optimiser steps of the engine's own batch
   order (same examples in every step, same batch size, same model weights and head initialisation,
   same attention implementation, same optimiser settings). Ours = pipeline.train.run(); Trainer =
   transformers.Trainer fed the same batches through a fixed sampler with DataCollatorWithPadding
   ("dynamic"); Trainer with train_sampling_strategy="group_by_length" (its own length-grouped
   batches, so not the same batches: compare tokens/s too); run_glue's default (every example padded
   to max_seq_length, default_data_collator) as a second reference. Trainer-best = the faster of
   dynamic and group_by_length.
2. Evaluation throughput on the validation half (ours: predict(); Trainer: evaluate() with the task's
   metrics; ours is the median of --repeats passes).
3. Wall time of one full run of ours as a subprocess (`python -m pipeline finetune --config
   params.yaml --task T ...`: start-up, splits and tokenisation, model loading, all steps, num_evals
   evaluations, test predictions, outputs), and an estimate of Trainer-best's full run from its
   measured rates and start-up (labelled est.).
4. The achieved FLOP rate of our training steps on non-padding tokens against a measured fp32 matmul
   peak (2048^3 torch.mm, same thread count); the FLOP formula is in benchlib.train_flops.
5. Pipeline overheads: `snakemake -n` on configs/paper.yaml (also with SLURM's `sinfo` hidden, when
   present: see docs/cluster.md), a no-op `snakemake` on the default study (only if a dry run says
   nothing is to be done), a no-op `dvc repro` (only if dvc.lock exists and
   `dvc status` is clean), and the per-job overhead (process start to the end of the first optimiser
   step of a Snakemake-style job, bench/probe.py).

The last line printed is `ratio ours/trainer: X.XX`: training examples per second, ours divided by
Trainer-best, averaged (arithmetic mean of the per-task ratios) over the tasks measured.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as B  # noqa: E402

TASKS = ["rte", "mrpc", "sts-b", "cola"]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def timed_cmd(cmd, repeats=3, budget_s=40.0, env=None):
    """Wall times of a command (repeated while the total stays under budget_s); the last output."""
    times, p = [], None
    while len(times) < repeats:
        t0 = time.perf_counter()
        p = subprocess.run(cmd, cwd=B.ROOT, capture_output=True, text=True, env=env)
        times.append(time.perf_counter() - t0)
        if p.returncode != 0 or sum(times) > budget_s:
            break
    return times, p


def planned(p) -> str:
    if p.returncode:
        return f"FAILED rc={p.returncode}: {(p.stderr or p.stdout).strip().splitlines()[-1:]}"
    jobs = re.findall(r"^total\s+(\d+)", p.stdout + p.stderr, re.M)
    return f"{jobs[-1]} jobs planned" if jobs else ""


def path_without(command: str, tmp: str) -> str:
    """$PATH with `command` hidden: the directories holding it are replaced by `tmp`, filled with links
    to everything else they hold."""
    out = []
    for d in os.environ.get("PATH", "").split(os.pathsep):
        if not (Path(d) / command).exists():
            out.append(d)
            continue
        for f in Path(d).iterdir():
            if f.name != command and not (Path(tmp) / f.name).exists():
                (Path(tmp) / f.name).symlink_to(f)
        if tmp not in out:
            out.append(tmp)
    return os.pathsep.join(out)


def pipeline_overheads(repeats: int) -> list[list]:
    rows = []
    smk = str(B.ROOT / ".venv" / "bin" / "snakemake")
    dvc = str(B.ROOT / ".venv" / "bin" / "dvc")
    if shutil.which("scontrol"):
        # The SLURM executor plugin runs `scontrol show config` (10 s timeout) whenever Snakemake builds
        # its command line, local runs included: instant without SLURM's tools or with a reachable
        # controller, up to 10 s per Snakemake start with the tools but no controller.
        log("scontrol show config (the SLURM plugin's probe at every Snakemake start)")
        ts, p = timed_cmd(["scontrol", "show", "config"], 1)
        probe = ["  incl. SLURM plugin probe", B.fmt(ts[0], 2), 1, "scontrol show config: " + (
            "controller answered" if p.returncode == 0 else "no controller reachable")]
    else:
        probe = ["  incl. SLURM plugin probe", "0", 0, "no scontrol on PATH: skipped by the plugin"]
    # The plugin probes only when `sinfo` is on PATH: with it there, Snakemake is timed once as it is,
    # then the same commands on the same PATH less sinfo (what a machine without SLURM's tools or with
    # a reachable controller sees), `repeats` times.
    tmp = tempfile.mkdtemp(prefix="bench-path-")
    hidden = {**os.environ, "PATH": path_without("sinfo", tmp)} if shutil.which("sinfo") else None
    paper = B.ROOT / "configs" / "paper.yaml"
    dry = [smk, "-n", "--quiet", "rules", "--configfile", "configs/paper.yaml"]
    if paper.exists():
        log("snakemake -n on configs/paper.yaml")
        ts, p = timed_cmd(dry, 1 if hidden else repeats, 80)
        rows.append(["snakemake -n (configs/paper.yaml)", B.fmt(B.median(ts), 2), len(ts), planned(p)])
        if hidden:
            log("snakemake -n on configs/paper.yaml, sinfo hidden")
            ts, p = timed_cmd(dry, repeats, 80, env=hidden)
            rows.append(["snakemake -n, SLURM tools hidden", B.fmt(B.median(ts), 2), len(ts),
                         planned(p) + "; as without SLURM's tools or with a controller"])
    else:
        rows.append(["snakemake -n (configs/paper.yaml)", "-", 0, "missing: configs/paper.yaml"])
    rows.append(probe)
    label = "no-op snakemake (default study" + (", SLURM tools hidden)" if hidden else ")")
    log("snakemake on the default study (params.yaml; dry run first)")
    ts_n, p = timed_cmd([smk, "-n"], 1, env=hidden)
    out = p.stdout + p.stderr
    if p.returncode == 0 and "Nothing to be done" in out:
        ts, p2 = timed_cmd([smk, "--cores", "1"], repeats, 60, env=hidden)
        note = "nothing to be done" if p2.returncode == 0 else f"FAILED rc={p2.returncode}"
        rows.append([label, B.fmt(B.median(ts), 2), len(ts), note])
    else:
        jobs = re.findall(r"^total\s+(\d+)", out, re.M)
        why = f"{jobs[-1]} jobs pending" if jobs else f"dry run rc={p.returncode}"
        rows.append([label, "-", 0, f"not a no-op ({why}); not run. dry run took {ts_n[0]:.2f} s"])
    shutil.rmtree(tmp, ignore_errors=True)
    if (B.ROOT / "dvc.lock").exists():
        log("dvc status / dvc repro")
        ts_s, p = timed_cmd([dvc, "status"], 1)
        if p.returncode == 0 and "up to date" in (p.stdout + p.stderr):
            ts, p2 = timed_cmd([dvc, "repro"], repeats, 60)
            rows.append(["no-op dvc repro", B.fmt(B.median(ts), 2), len(ts),
                         "up to date" if p2.returncode == 0 else f"FAILED rc={p2.returncode}"])
        else:
            rows.append(["no-op dvc repro", "-", 0, f"not up to date (dvc status {ts_s[0]:.2f} s); not run"])
    else:
        rows.append(["no-op dvc repro", "-", 0, "missing: dvc.lock (dvc repro has never completed here)"])
    return rows


def job_overhead(s, feats: dict, repeats: int) -> dict:
    """Process start to the end of the first optimiser step of a Snakemake-style job
    (`python -m pipeline finetune --settings JSON --features F.pt --threads 1 --out D`)."""
    import torch

    from pipeline.config import canonical

    tmp = Path(tempfile.mkdtemp(prefix="bench-job-"))
    torch.save(feats, tmp / "features.pt")
    runs = []
    for _ in range(repeats):
        env = dict(os.environ, BENCH_T0=repr(time.time()), PIPELINE_LOG="WARNING")
        p = subprocess.run([B.PY, str(B.ROOT / "bench" / "probe.py"), "ours", "--", "finetune", "--settings",
                            canonical(s.to_dict()), "--features", str(tmp / "features.pt"), "--threads", "1",
                            "--out", str(tmp / "out")], cwd=B.ROOT, env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    keys = runs[0].keys()
    return {k: B.median([r[k] for r in runs]) for k in keys} | {"n": len(runs)}


def hf_startup(task: str, repeats: int) -> dict:
    runs = []
    for _ in range(repeats):
        env = dict(os.environ, BENCH_T0=repr(time.time()))
        p = subprocess.run([B.PY, str(B.ROOT / "bench" / "probe.py"), "hf", task], cwd=B.ROOT, env=env,
                           capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(p.stderr[-2000:])
        runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
    return {k: B.median([r[k] for r in runs]) for k in runs[0]} | {"n": len(runs)}


def tiny_overlay() -> Path:
    p = Path(tempfile.mkdtemp(prefix="bench-cfg-")) / "tiny.yaml"
    p.write_text("splits: {train_size: 32, val_size: 16, test_size: 16}\n"
                 "train: {epochs: 1, num_evals: 1}\n"
                 "tasks: {sst-2: {epochs: 1}, sts-b: {epochs: 1}}\n")
    return p


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tasks", default=",".join(TASKS), help="comma-separated (default: %(default)s)")
    ap.add_argument("--steps", type=int, default=20, help="optimiser steps per throughput measurement")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the cheap measurements (median)")
    ap.add_argument("--full-run", choices=["full", "tiny", "skip"], default="full",
                    help="full: the default study's run per task; tiny: a 32-example run (smoke tests)")
    ap.add_argument("--no-pipeline", action="store_true", help="skip the Snakemake/DVC overheads")
    ap.add_argument("--json", help="also write all measurements to this file")
    ap.add_argument("--report-from", help="print the report of a previous --json file and exit")
    a = ap.parse_args(argv)
    if a.report_from:
        out = json.loads(Path(a.report_from).read_text())
        report(out)
        ratios = [r["ratio"] for r in out["tasks"].values()]
        print(f"ratio ours/trainer: {sum(ratios) / len(ratios):.2f}")
        return
    tasks = [t.strip() for t in a.tasks.split(",") if t.strip()]
    threads = 1
    t_begin = time.perf_counter()

    import torch
    import transformers

    torch.set_num_threads(threads)
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True to a scalar")
    from pipeline.model import load_model

    out = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv,
           "machine": f"{platform.machine()} {os.cpu_count()} CPUs", "torch": torch.__version__,
           "transformers": transformers.__version__, "threads": threads, "steps": a.steps, "tasks": {}}
    log("matmul peak")
    peak = B.matmul_peak(threads=threads)
    out["peak"] = peak
    shapes = None
    probe_s = probe_f = None
    for task in tasks:
        s = B.settings(task)
        log(f"{task}: features")
        feats = B.features(s)
        if shapes is None:
            shapes = B.model_shapes(load_model(s.model, 2, attn_implementation=s.attn_implementation))
            out["shapes"] = shapes
        lengths = (feats["train"]["offsets"][1:] - feats["train"]["offsets"][:-1]).tolist()
        n_train = len(lengths)
        batches = B.train_batches(s, n_train, a.steps)
        n_ex = sum(len(b) for b in batches)
        real, padded = B.token_counts(batches, lengths, s.micro_batch_tokens)
        flops_real = B.train_flops([lengths[i] for b in batches for i in b], shapes)
        flops_padded = B.padded_train_flops(batches, lengths, s.micro_batch_tokens, shapes)
        r = {"settings": {k: getattr(s, k) for k in ("batch_size", "max_seq_length", "epochs", "num_evals", "lr",
                                            "micro_batch_tokens", "eval_batch_tokens", "attn_implementation",
                                            "update_log_steps")},
             "n_train": n_train, "n_val": len(feats["val"]["labels"]), "n_test": len(feats["test"]["labels"]),
             "n_examples_measured": n_ex, "real_tokens": real, "padded_tokens": padded,
             "flops_real": flops_real, "flops_padded": flops_padded}
        log(f"{task}: ours, {a.steps} steps")
        tm = B.ours_train(s, feats, a.steps, threads)
        ev = B.ours_eval(s, feats, a.repeats, threads)
        r["ours"] = {"train_s": tm["train_s"], "train_ex_s": tm["train_examples_per_s"],
                     "real_tok_s": real / tm["train_s"], "eval_s": ev["eval_s"], "eval_ex_s": ev["eval_ex_s"],
                     "eval_all_s": ev["all_s"]}
        r["ours"]["gflops_real"] = flops_real / tm["train_s"] / 1e9
        r["ours"]["gflops_padded"] = flops_padded / tm["train_s"] / 1e9
        for mode in ("dynamic", "group_by_length", "pad_max"):
            log(f"{task}: Trainer {mode}, {a.steps} steps")
            r[mode] = B.hf_train_eval(s, feats, a.steps, mode, fixed_batches=batches, threads=threads)
        r["identical_work"] = (r["dynamic"]["real_tokens"] == real and r["dynamic"]["n_train"] == n_ex)
        best = max(("dynamic", "group_by_length"), key=lambda m: r[m]["train_ex_s"])
        r["trainer_best"] = best
        r["ratio"] = r["ours"]["train_ex_s"] / r[best]["train_ex_s"]
        r["ratio_pad_max"] = r["ours"]["train_ex_s"] / r["pad_max"]["train_ex_s"]
        # Trainer-best's FLOP rate on its own examples' real tokens, and the most our ratio could be if
        # our steps ran at the matmul peak: peak / (our FLOPs per example), over Trainer-best's ex/s
        tb = r[best]
        tb["gflops_real"] = B.train_flops(tb.pop("lengths"), shapes) / tb["train_s"] / 1e9
        for m in ("dynamic", "group_by_length", "pad_max"):
            r[m].pop("lengths", None)
        r["ceiling_ratio"] = peak["gflops"] * 1e9 / (flops_real / n_ex) / tb["train_ex_s"]
        if a.full_run != "skip":
            log(f"{task}: full run as a subprocess ({a.full_run})")
            cfgs = [B.PARAMS] + ([tiny_overlay()] if a.full_run == "tiny" else [])
            fr = B.full_run_subprocess(task, cfgs, Path(tempfile.mkdtemp(prefix="bench-run-")) / "out")
            r["full_run"] = fr
        if probe_s is None:
            probe_s, probe_f = s, feats
        out["tasks"][task] = r

    if probe_s is not None:
        log("per-job overhead (bench/probe.py)")
        out["job_overhead"] = job_overhead(probe_s, probe_f, a.repeats)
        out["hf_startup"] = hf_startup(probe_s.task, a.repeats)
        for task, r in out["tasks"].items():  # Trainer-best full run, estimated from its measured parts
            fr = r.get("full_run")
            if not fr:
                continue
            t = fr["timing"]
            n_eval_ex = (t["eval_examples_per_s"] or 0) * t["eval_s"]
            best = r[r["trainer_best"]]
            # Trainer's imports and model loading + our tokenisation and output writing (the part of our
            # full run outside run(), less our imports) + Trainer-best's training and evaluation at its
            # measured rates for the same number of steps and evaluated examples
            r["trainer_full_est_s"] = (out["hf_startup"]["model_loaded"]
                                       + max(0.0, fr["wall_s"] - t["wall_s"] - out["job_overhead"]["import_pipeline"])
                                       + fr["total_steps"] * r["settings"]["batch_size"] / best["train_ex_s"]
                                       + n_eval_ex / best["eval_ex_s"])
    if not a.no_pipeline:
        out["pipeline"] = pipeline_overheads(a.repeats)
    out["elapsed_s"] = time.perf_counter() - t_begin
    report(out)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    ratios = [r["ratio"] for r in out["tasks"].values()]
    print(f"ratio ours/trainer: {sum(ratios) / len(ratios):.2f}")


def report(out):
    P = print
    st = next(iter(out["tasks"].values()))["settings"] if out["tasks"] else {}
    P(f"# bench/finetune.py  {out['date']}  {out['machine']}  torch {out['torch']}  "
      f"transformers {out['transformers']}  threads {out['threads']}")
    P(f"# embedded minilm-l6, default study settings (params.yaml): batch {st.get('batch_size')}, "
      f"max_seq_length {st.get('max_seq_length')}, micro_batch_tokens {st.get('micro_batch_tokens')}, "
      f"eval_batch_tokens {st.get('eval_batch_tokens')}, attn {st.get('attn_implementation')}")
    P(f"# throughput: the first {out['steps']} optimiser steps of the engine's batch order "
      f"(identical batches for ours, Trainer dynamic and run_glue pad-to-max); eval on the validation half")
    P("")
    rows = []
    names = {"ours": "ours (pipeline.train.run)", "dynamic": "Trainer dynamic padding",
             "group_by_length": "Trainer group_by_length", "pad_max": "run_glue default (pad to max)"}
    for task, r in out["tasks"].items():
        for k in ("ours", "dynamic", "group_by_length", "pad_max"):
            m = r[k]
            pad = (1 - m["real_tokens"] / m["padded_tokens"]) if k != "ours" else 1 - r["real_tokens"] / r["padded_tokens"]
            full = ""
            if k == "ours" and r.get("full_run"):
                full = B.fmt(r["full_run"]["wall_s"])
            elif k == r["trainer_best"] and r.get("trainer_full_est_s"):
                full = B.fmt(r["trainer_full_est_s"]) + " est."
            rows.append([task, names[k] + (" *" if k == r["trainer_best"] else ""), B.fmt(m["train_ex_s"]),
                         B.fmt(m["real_tok_s"], 0), B.fmt(pad, 2), B.fmt(m["eval_ex_s"]), full or "-"])
    P(B.table(rows, ["task", "framework (* = Trainer-best)", "train ex/s", "real tok/s", "pad share",
                     "eval ex/s", "full run s"]))
    P("")
    rows = []
    for task, r in out["tasks"].items():
        fr = r.get("full_run")
        if not fr:
            continue
        t = fr["timing"]
        rows.append([task, f"{r['n_train']}/{r['n_val']}/{r['n_test']}", fr["total_steps"], fr["n_evals"],
                     B.fmt(fr["wall_s"]), B.fmt(t["wall_s"]), B.fmt(t["train_s"]), B.fmt(t["eval_s"]),
                     B.fmt(fr["wall_s"] - t["wall_s"]), B.fmt(t["train_examples_per_s"]),
                     B.fmt(t["eval_examples_per_s"])])
    if rows:
        P("Full runs of ours, `python -m pipeline finetune --config params.yaml --task T --condition debiased "
          "--seed 0` (subprocess):")
        P(B.table(rows, ["task", "train/val/test", "steps", "evals", "wall s", "run() s", "train s", "eval s",
                         "outside run() s", "train ex/s", "eval ex/s"]))
        P("")
    pk = out["peak"]
    P(f"fp32 matmul peak, 1 thread: {pk['gflops']:.1f} GFLOP/s (torch.mm {pk['n']}^3, median of "
      f"{len(pk['all_gflops'])}); at the FFN shape 1024x384 @ 384x1536: {pk['ffn_gflops']:.1f} GFLOP/s")
    sh = out.get("shapes", {})
    P(f"FLOPs per training sequence of n real tokens = 3 x (2*{sh.get('enc_linear')}*n + 4*{sh.get('n_layers')}"
      f"*{sh.get('hidden')}*n^2 + 2*{sh.get('per_seq_linear')})  (encoder Linear weights per token, attention "
      f"QK^T and AV, pooler + classifier per sequence; backward = 2 x forward)")
    rows = []
    for task, r in out["tasks"].items():
        o, tb = r["ours"], r[r["trainer_best"]]
        rows.append([task, r["real_tokens"], r["padded_tokens"], B.fmt(r["flops_real"] / 1e9, 0),
                     B.fmt(o["gflops_real"]), B.fmt(o["gflops_real"] / pk["gflops"], 2),
                     B.fmt(o["gflops_padded"]), B.fmt(o["gflops_padded"] / pk["gflops"], 2),
                     B.fmt(tb.get("gflops_real")), B.fmt(tb.get("gflops_real", 0) / pk["gflops"], 2),
                     B.fmt(r.get("ceiling_ratio"), 2)])
    P(B.table(rows, ["task", "real tokens", "padded tokens", "GFLOP (real)", "ours GFLOP/s real",
                     "frac of peak", "GFLOP/s incl. padding", "frac of peak", "Trainer-best GFLOP/s real",
                     "frac of peak", "ratio at peak"]))
    ceil = [r.get("ceiling_ratio", float("nan")) for r in out["tasks"].values()]
    P(f"ratio at peak: ours/Trainer-best if our training ran at the measured matmul peak on its non-padding "
      f"tokens (peak / our FLOPs per example / Trainer-best's ex/s); mean {sum(ceil) / len(ceil):.2f}")
    P("")
    if out.get("job_overhead"):
        j, h = out["job_overhead"], out["hf_startup"]
        P(f"Per-job overhead (median of {j['n']}, bench/probe.py: `python -m pipeline finetune --settings JSON "
          f"--features F.pt`, seconds from spawn):")
        P("  " + ", ".join(f"{k} {v:.2f}" for k, v in j.items() if k != "n"))
        P(f"  => start-up to first step {j['before_model']:.2f} s before model loading, "
          f"{j['model_loaded']:.2f} s with it; first step done at {j['first_step']:.2f} s")
        P(f"Trainer start-up (median of {h['n']}): " + ", ".join(f"{k} {v:.2f}" for k, v in h.items() if k != "n"))
        P("")
    if out.get("pipeline"):
        P(B.table(out["pipeline"], ["pipeline overhead", "wall s (median)", "repeats", "note"]))
        P("")
    rows = [[t, B.fmt(r["ratio"], 2), r["trainer_best"], B.fmt(r["ratio_pad_max"], 2),
             "yes" if r["identical_work"] else "NO"] for t, r in out["tasks"].items()]
    P(B.table(rows, ["task", "ours/Trainer-best", "Trainer-best", "ours/run_glue pad-max",
                     "same batches as Trainer dynamic"]))
    P(f"elapsed {out['elapsed_s']:.0f} s")


if __name__ == "__main__":
    main()
