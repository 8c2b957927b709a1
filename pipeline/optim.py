"""Adam with a bias-correction switch (BERTAdam vs debiased Adam), parameter groups tagged by
depth, layer-wise LR decay, weight decay toward zero and toward the pre-trained weights, and the
warm-up + linear-decay schedule.

Two behaviours of the official code (paper-details.md 6.8) are settings of `parameter_groups`:
- `prior_wd_head`: under pre-trained weight decay the new classifier (the head's decayed weights)
  decays toward zero (`zero`, the paper's stated intent) or toward its random initial value
  (`initial`, what the official `PriorWD` does: its "last group toward 0" special case never fires).
- `weight_decay_impl`: plain weight decay is real decoupled decay (`decay`) or nothing
  (`official_noop`: the official `PriorWD` wrapper sets every group's weight decay to 0, so
  `--weight_decay` alone has no effect; Table 2's WD column equals Standard because of it).
"""
from __future__ import annotations

import math

import torch
from torch import nn

from .model import block_of, depth_order, head_modules, n_blocks


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay and optional pre-trained weight decay.

    bias_correction=True is `torch.optim.AdamW`; False is BERTAdam (the original BERT code and
    transformers 2.x `AdamW(correct_bias=False)`): m_t and v_t enter the update without the
    (1 - beta1^t) and (1 - beta2^t) divisions, inflating early updates by
    (1 - beta1^t) / sqrt(1 - beta2^t) relative to debiased Adam.

    Decays act before the Adam step, each from the same pre-step weight w (so they add):
    w <- w - lr_t * weight_decay * w - lr_t * prior_wd * (w - anchor). A group's `anchors` (one tensor
    or None per parameter) hold the weights at the start of fine-tuning; None decays toward zero (the
    new head under `prior_wd_head: zero`, as the paper intends and the official code does not).
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, bias_correction: bool = True, prior_wd: float = 0.0):
        if lr <= 0:
            raise ValueError(f"lr must be positive, got {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                        bias_correction=bias_correction, prior_wd=prior_wd, anchors=None)
        super().__init__(params, defaults)

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            wd, pwd, anchors = group["weight_decay"], group["prior_wd"], group["anchors"]
            params, grads, exp_avgs, exp_avg_sqs = [], [], [], []
            for j, p in enumerate(group["params"]):
                if p.grad is None:
                    continue
                if wd or pwd:
                    shift = p * wd if wd else torch.zeros_like(p)
                    if pwd:
                        anchor = anchors[j] if anchors is not None else None
                        shift.add_(p - anchor if anchor is not None else p, alpha=pwd)
                    p.sub_(shift, alpha=lr)
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                params.append(p)
                grads.append(p.grad)
                exp_avgs.append(state["exp_avg"])
                exp_avg_sqs.append(state["exp_avg_sq"])
            # parameters that missed a gradient at some step keep their own count: group by it
            by_step: dict = {}
            for i, p in enumerate(params):
                by_step.setdefault(self.state[p]["step"], []).append(i)
            for t, idx in by_step.items():
                ps = [params[i] for i in idx]
                gs = [grads[i] for i in idx]
                ms = [exp_avgs[i] for i in idx]
                vs = [exp_avg_sqs[i] for i in idx]
                # the same arithmetic as torch.optim.AdamW's multi-tensor path
                torch._foreach_lerp_(ms, gs, 1 - beta1)
                torch._foreach_mul_(vs, beta2)
                torch._foreach_addcmul_(vs, gs, gs, 1 - beta2)
                denom = torch._foreach_sqrt(vs)
                if group["bias_correction"]:
                    step_size = lr / (1 - beta1 ** t)
                    torch._foreach_div_(denom, math.sqrt(1 - beta2 ** t))
                else:  # BERTAdam: no bias correction of either moment
                    step_size = lr
                torch._foreach_add_(denom, eps)
                torch._foreach_addcdiv_(ps, ms, denom, -step_size)
        return loss


def _no_decay(module: nn.Module, pname: str) -> bool:
    return pname == "bias" or isinstance(module, nn.LayerNorm)


def llrd_scale(depth: str, blocks: int, eta: float) -> float:
    """Head and pooler at the base LR, the top block at eta, each lower block one more factor eta,
    embeddings last (eta^(blocks + 1))."""
    if eta == 1.0 or depth in ("head", "pooler"):
        return 1.0
    if depth == "embeddings":
        return eta ** (blocks + 1)
    return eta ** (blocks - int(depth[len("block"):]))


WEIGHT_DECAY_IMPLS = ("decay", "official_noop")
PRIOR_WD_HEADS = ("zero", "initial")


def applied_weight_decay(weight_decay: float, weight_decay_impl: str) -> float:
    """The plain weight decay the optimiser applies: `weight_decay`, or 0 under `official_noop`."""
    if weight_decay_impl not in WEIGHT_DECAY_IMPLS:
        raise ValueError(f"weight_decay_impl must be one of {WEIGHT_DECAY_IMPLS}, got {weight_decay_impl!r}")
    return 0.0 if weight_decay_impl == "official_noop" else weight_decay


def parameter_groups(model: nn.Module, *, lr: float, weight_decay: float = 0.0, prior_wd: float = 0.0,
                     llrd_eta: float = 1.0, initial: dict | None = None, prior_wd_head: str = "zero",
                     weight_decay_impl: str = "decay") -> list[dict]:
    """One group per (depth, decay flag), built once. Each carries `depth`, `decay`, `lr_scale`
    and, for pre-trained weight decay, the anchors (the weights at the start of fine-tuning; the head's
    are None, toward zero, under `prior_wd_head: zero`, and its initial weights under `initial`).
    Biases and LayerNorm parameters are never decayed. `weight_decay_impl: official_noop` zeroes
    every group's plain weight decay (the official PriorWD wrapper does; prior_wd is unaffected)."""
    if prior_wd_head not in PRIOR_WD_HEADS:
        raise ValueError(f"prior_wd_head must be one of {PRIOR_WD_HEADS}, got {prior_wd_head!r}")
    weight_decay = applied_weight_decay(weight_decay, weight_decay_impl)
    blocks = n_blocks(model)
    groups: dict = {}
    for mname, module in model.named_modules():
        for pname, param in module.named_parameters(recurse=False):
            if not param.requires_grad:
                continue
            full = f"{mname}.{pname}" if mname else pname
            depth = block_of(full, model)
            decay = not _no_decay(module, pname)
            key = (depth, decay)
            if key not in groups:
                scale = llrd_scale(depth, blocks, llrd_eta)
                groups[key] = {"params": [], "names": [], "depth": depth, "decay": decay,
                               "lr_scale": scale, "lr": lr * scale,
                               "weight_decay": weight_decay if decay else 0.0,
                               "prior_wd": prior_wd if decay else 0.0, "anchors": None}
            groups[key]["params"].append(param)
            groups[key]["names"].append(full)
    order = {d: i for i, d in enumerate(depth_order(blocks))}
    out = [groups[k] for k in sorted(groups, key=lambda k: (order[k[0]], not k[1]))]
    if prior_wd:
        # the new classifier: the parameters of the task head (pipeline.model.head_modules)
        head = {id(p) for m in head_modules(model) for p in m.parameters()}
        toward_zero = head if prior_wd_head == "zero" else set()
        for g in out:
            if g["decay"]:
                g["anchors"] = [None if id(p) in toward_zero else initial[n]
                                for n, p in zip(g["names"], g["params"])]
    return out


def linear_schedule(step: int, total: int, warmup: int) -> float:
    """The LR factor for optimiser step `step` (0-indexed, as transformers' LambdaLR): linear warm-up
    over `warmup` steps from 0, then linear decay to 0 at `total`."""
    if step < warmup:
        return step / max(1, warmup)
    return max(0.0, (total - step) / max(1, total - warmup))


def set_lr(optimizer: torch.optim.Optimizer, base_lr: float, factor: float) -> None:
    for g in optimizer.param_groups:
        g["lr"] = base_lr * g.get("lr_scale", 1.0) * factor
