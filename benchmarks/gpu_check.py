"""GPU readiness figures (benchmarks/gpu_check.sh runs them): the delta-rule ops against fla's
kernels, and TRM's training step rate at the paper's size.

* ``ops``: Gated DeltaNet and KDA, fla's fused kernel against our chunked pure-torch form, at
  ``--lengths`` tokens (batch 1, 4 heads, K = V = 64, random inputs as the layers feed the op:
  q and k L2-normalised, log decays <= 0, beta in (0, 1), an initial state). Agreement: the
  largest absolute difference of the outputs, of the final states and of the input gradients,
  in float32, with the reference's largest magnitude beside it. Speed: the best of
  ``--repeats`` forward+backward passes of each, the device synchronised around the clock.
  Without CUDA (``--device cpu``) the chunked form is checked against the loop over time at
  short lengths instead (the CPU-only part CI runs).
* ``trm``: optimizer steps per second of TRM at ``NAMED_CONFIGS["trm-sudoku-extreme"]`` (dim
  512, mlp_t, T=3, n=6, puzzle prefix 16, 9x9 Sudoku, batch 768, AdamATan2 and the puzzle
  table's sign-SGD), on synthetic batches (the model alone, as nanoGPT's bench.py), with bf16
  autocast and ``torch.compile`` as the Trainer runs it on CUDA, after ``--warmup`` steps that
  include compilation. ``--quick`` shrinks it to a CPU-sized check of the same code path.

Each prints one JSON object.

    python benchmarks/gpu_check.py ops [--device cuda] [--lengths 1024,2048,4096,8192]
    python benchmarks/gpu_check.py trm [--device cuda] [--steps 20] [--no-compile] [--quick]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import time

import torch
import torch.nn.functional as F

from tracegym.agents.backbones import (
    HAS_FLA,
    HAS_FLA_KDA,
    chunk_gated_delta_rule,
    chunk_kda,
    gated_delta_rule,
    kda,
    recurrent_gated_delta_rule,
    recurrent_kda,
)

OPS = {  # name -> (chunked torch form, dispatching op, loop over time, fla present, per channel)
    "gated_deltanet": (chunk_gated_delta_rule, gated_delta_rule, recurrent_gated_delta_rule,
                       HAS_FLA, False),
    "kda": (chunk_kda, kda, recurrent_kda, HAS_FLA_KDA, True),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def op_inputs(T: int, device: torch.device, per_channel: bool, B: int = 1, H: int = 4,
              K: int = 64, V: int = 64, seed: int = 0) -> list[torch.Tensor]:
    """q, k, v, g, beta, initial state for one op call, float32, requiring grad (q, k, v)."""
    gen = torch.Generator(device="cpu").manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen).to(device)

    q = F.normalize(rnd(B, T, H, K), dim=-1)
    k = F.normalize(rnd(B, T, H, K), dim=-1)
    v = rnd(B, T, H, V)
    g = F.logsigmoid(rnd(*((B, T, H, K) if per_channel else (B, T, H))) + 4)  # decays near 1
    beta = torch.sigmoid(rnd(B, T, H))
    s0 = rnd(B, H, K, V)
    for t in (q, k, v):
        t.requires_grad_(True)
    return [q, k, v, g, beta, s0]


def _run(fn, inputs):
    q, k, v, g, beta, s0 = inputs
    o, s = fn(q, k, v, g, beta, initial_state=s0)
    grads = torch.autograd.grad((o.float() * o.detach().float()).sum() + s.sum(), (q, k, v))
    return o.detach().float(), s.detach().float(), [x.float() for x in grads]


def _best_time(fn, inputs, device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        _run(fn, inputs)
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best


def check_ops(device: torch.device, lengths: list[int], repeats: int = 3) -> dict:
    """fla against the chunked torch form on CUDA (the chunked form against the loop over time
    elsewhere): differences and fwd+bwd seconds per op and length."""
    rows = []
    for name, (chunked, op, recurrent, has_fla, per_channel) in OPS.items():
        use_fla = device.type == "cuda" and has_fla
        for T in lengths:
            inputs = op_inputs(T, device, per_channel)
            if use_fla:
                ref_name, ref = "fla", functools.partial(op, impl="fla")
            else:
                ref_name, ref = "recurrent", recurrent
            fast = _run(chunked, inputs)
            slow = _run(ref, inputs)
            row = {"op": name, "T": T, "against": ref_name,
                   "max_abs_diff": {
                       "o": (fast[0] - slow[0]).abs().max().item(),
                       "state": (fast[1] - slow[1]).abs().max().item(),
                       "grad": max((a - b).abs().max().item() for a, b in zip(fast[2], slow[2])),
                   },
                   "max_abs_ref": {"o": slow[0].abs().max().item(),
                                   "state": slow[1].abs().max().item()},
                   "chunk_s": _best_time(chunked, inputs, device, repeats),
                   f"{ref_name}_s": _best_time(ref, inputs, device, repeats)}
            rows.append(row)
    skipped = [] if device.type != "cuda" else [n for n, o in OPS.items() if not o[3]]
    return {"check": "ops", "device": str(device), "fla_missing_for": skipped, "rows": rows}


def trm_rate(device: torch.device, steps: int, warmup: int, compile_: bool, amp: bool,
             quick: bool) -> dict:
    """TRM optimizer steps/s at the paper config on synthetic 9x9 Sudoku batches (carry flow)."""
    from tracegym.agents.reasoners import NAMED_CONFIGS, build_policy
    from tracegym.training.optim import build_optimizer, build_sparse_optimizer
    from tracegym.training.tasks import task_spec

    config = {k: v for k, v in NAMED_CONFIGS["trm-sudoku-extreme"].items() if k != "task"}
    batch = 768
    if quick:  # the same code path at CPU size
        config.update(dim=32, heads=2, H_cycles=1, L_cycles=1, N_sup=2, multiple_of=16)
        batch = 8
    spec = task_spec("sudoku")
    torch.manual_seed(0)
    policy = build_policy(task=spec, **config).to(device)
    optimizer = build_optimizer(policy, name="adam_atan2", lr=1e-4, weight_decay=1.0,
                                betas=(0.9, 0.95))
    sparse = build_sparse_optimizer(policy, lr=1e-4, weight_decay=1.0)
    if compile_:
        for module in policy.children():
            module.compile()
    gen = torch.Generator().manual_seed(0)
    batches = [{"inputs": torch.randint(1, spec.vocab_size, (batch, spec.seq_len), generator=gen),
                "labels": torch.randint(1, spec.vocab_size, (batch, spec.seq_len), generator=gen),
                "puzzle_identifiers": torch.zeros(batch, dtype=torch.long)} for _ in range(4)]
    batches = [{k: v.to(device) for k, v in b.items()} for b in batches]
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp)
    policy.train()
    state, times = None, []
    for step in range(warmup + steps):
        with autocast:
            state, out = policy.carry_step(state, batches[step % len(batches)])
        out.loss.float().backward()
        for opt in (optimizer, sparse):
            if opt is not None:
                opt.step()
                opt.zero_grad(set_to_none=True)
        _sync(device)
        times.append(time.perf_counter())
    loss = out.loss.item()
    window = times[-1] - times[warmup - 1]
    return {"check": "trm_rate", "device": str(device), "config": config, "batch_size": batch,
            "amp_bf16": amp, "compile": compile_, "warmup_steps": warmup, "steps": steps,
            "steps_per_s": steps / window, "examples_rows_per_s": steps * batch / window,
            "warmup_s": times[warmup - 1] - times[0] if warmup > 1 else None,
            "final_loss": loss, "parameters": sum(p.numel() for p in policy.parameters())}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="check", required=True)
    ops = sub.add_parser("ops", help="fla vs chunked torch delta-rule ops")
    ops.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ops.add_argument("--lengths", default=None,
                     help="comma-separated token counts (default 1024..8192 on CUDA, 64 on CPU)")
    ops.add_argument("--repeats", type=int, default=3)
    trm = sub.add_parser("trm", help="TRM paper-config step rate, bf16 + compile")
    trm.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    trm.add_argument("--steps", type=int, default=20)
    trm.add_argument("--warmup", type=int, default=5)
    trm.add_argument("--no-compile", action="store_true")
    trm.add_argument("--no-amp", action="store_true")
    trm.add_argument("--quick", action="store_true", help="CPU-sized model and batch")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if args.check == "ops":
        default = "1024,2048,4096,8192" if device.type == "cuda" else "64"
        lengths = [int(t) for t in (args.lengths or default).split(",")]
        result = check_ops(device, lengths, args.repeats)
    else:
        if args.steps < 1 or args.warmup < 1:
            parser.error("--steps and --warmup must be >= 1")
        on_cuda = device.type == "cuda"
        result = trm_rate(device, args.steps, args.warmup, compile_=on_cuda and not
                          args.no_compile, amp=on_cuda and not args.no_amp, quick=args.quick)
    result["machine"] = {"torch": torch.__version__, "python": platform.python_version(),
                         "gpu": torch.cuda.get_device_name(device) if device.type == "cuda"
                         else None, "loadavg": [round(x, 2) for x in os.getloadavg()]}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
