"""Backbone figures: forward+backward time and memory vs sequence length, and the gated delta
rule's chunked form against its loop-over-time reference (and fla's kernel on CUDA).

Prints one JSON object; draws a PNG (``--plot``) when matplotlib is installed.
- scaling: each backbone at fixed width (dim 256, depth 2, batch 1 by default), random inputs,
  one burn-in pass then the best of ``--repeats`` timed forward+backward passes per length.
  Attention backbones and the hybrid run causal; mlp_mixer is bidirectional only; the hybrid is
  "GGGA" repeated at depth >= 4 and "GA" below (so a depth-2 hybrid still holds attention).
  A backbone stops at the first length whose pass took over ``--budget-s`` seconds (longer
  lengths are listed under ``skipped``), and mlp_mixer stops at 2048 tokens: its token MLP has
  ~8 T^2 parameters (T = 4096 would be ~134M parameters for one layer).
- memory: on CUDA the peak ``torch.cuda.max_memory_allocated`` over the pass minus the memory
  held before it. On CPU there is no allocator peak to read, so the figure is the bytes of the
  tensors autograd saves for backward (distinct storages, via ``saved_tensors_hooks``): the
  activation memory training needs, which is what grows with T. Parameters are not counted.
- delta_rule, kda: each op alone at T = 1024 (B 1, H 4, K = V = 64), recurrent vs chunked
  (chunk 64), forward+backward and forward under no_grad; on CUDA with fla installed, torch
  chunked vs fla. KDA's decay is per key channel (g is (B, T, H, K)).
- cache_bytes: every causal backbone prefilled with T = 1024 and 8192 random tokens (batch 1, in
  pieces of ``--prefill-chunk`` tokens, no_grad), then the bytes of the tensors its decoding cache
  holds, read from the cache itself: ``bytes`` (numel x element size of every cached tensor) and
  ``storage_bytes`` (distinct storages those tensors keep alive; larger when a cached tensor is a
  slice of a bigger one). Per token = bytes / T: constant for a KV cache (transformer: 2 heads
  head_dim layers 4 bytes, given as ``kv_formula_per_token``), smaller for MLA's latent, falling
  as 1/T for the bounded sliding window and the constant-size Gated DeltaNet / KDA states.
- Recipes (qwen3_next, kimi_linear, gdn_h1) run at depth max(--depth, pattern length), so every
  layer kind of the recipe is present; sliding-window layers use ``--window``.

Each scaling case runs in a fresh process (see ``bench_scaling``); progress goes to stderr.
On CPU each case also reports ``peak_rss_delta_mb``: the process's peak resident memory minus
its size before the first pass (parameters, activations, allocator slack: a real peak, where
``memory_mb`` counts only what autograd saves).

Usage: ``python benchmarks/backbones.py [--quick] [--plot benchmarks/backbones.png]
[--json benchmarks/results_backbones.json]``.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import fields

import torch
import torch.nn.functional as F

from tracegym.agents.backbones import (
    BACKBONES,
    HAS_FLA,
    HAS_FLA_KDA,
    RECIPES,
    build_backbone,
    chunk_gated_delta_rule,
    chunk_kda,
    gated_delta_rule,
    kda,
    min_depth_for_pattern,
    recurrent_gated_delta_rule,
    recurrent_kda,
)
from tracegym.io import atomic_write_text

MIXER_MAX_LEN = 2048
CACHE_LENGTHS = (1024, 8192)


def hybrid_pattern(depth: int) -> str:
    # Qwen3-Next's 3:1 needs four layers; a shallower stack alternates so it holds attention.
    return "GGGA" if depth >= 4 else "GA"


def bench_depth(name: str, depth: int) -> int:
    # A recipe cut below its pattern length would lose its attention layers ("GGGA" -> "GG").
    return min_depth_for_pattern(name, depth) if name in RECIPES else depth


def make_net(name: str, args, T: int, causal: bool):
    pattern = hybrid_pattern(args.depth) if name == "hybrid" else None
    return build_backbone(
        name,
        args.dim,
        bench_depth(name, args.depth),
        args.heads,
        T,
        causal,
        multiple_of=64,
        pattern=pattern,
        window=args.window,
    )


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(fn) -> int:
    """Bytes of the distinct storages autograd saves while running ``fn()``."""
    storages: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn()
    return sum(storages.values())


def time_pass(step, device: torch.device, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        step()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def rss_bytes() -> int:
    """Resident set size of this process now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def run_case(args, name: str, T: int, device: torch.device) -> dict:
    """One backbone at one length, in this process: time, memory, peak RSS."""
    causal = name != "mlp_mixer"
    torch.manual_seed(0)
    net = make_net(name, args, T, causal).to(device)
    x = torch.randn(args.batch, T, args.dim, device=device)

    def step():
        net(x).square().mean().backward()
        net.zero_grad(set_to_none=True)

    rss_before = rss_bytes()
    step()  # burn-in: allocator warm-up, kernel selection
    seconds = time_pass(step, device, args.repeats)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        step()
        mem = torch.cuda.max_memory_allocated(device) - base
    else:
        mem = saved_bytes(lambda: net(x).square().mean())
    row = {"seq_len": T, "fwd_bwd_s": seconds, "memory_mb": mem / 2**20}
    if device.type == "cpu" and rss_before:
        # ru_maxrss is in KiB on Linux: the process's high-water mark minus its size before the
        # first pass (imports, parameters, input) -- what the passes themselves added at peak.
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        row["peak_rss_delta_mb"] = max(peak - rss_before, 0) / 2**20
    return row


def case_command(args, name: str, T: int) -> list[str]:
    """This script, run for one scaling case with the sweep's model settings."""
    settings = ("dim", "depth", "heads", "batch", "repeats", "window")
    return [sys.executable, os.path.abspath(__file__), "--case", name, str(T),
            *(f"--{key}={getattr(args, key)}" for key in settings)]


def bench_scaling(args, device: torch.device) -> tuple[dict, dict, dict]:
    """Every backbone at every length, each case in a fresh process.

    A fresh process per case keeps one backbone's allocations (and the allocator's fragments)
    from piling onto the next -- the whole sweep in one process was killed for memory on a
    24 GB machine although no single case needs 5 GB -- and makes the CPU peak RSS a figure of
    that case alone. A case that fails (killed, out of memory, over ``--case-timeout-s``) is
    recorded under ``failed`` and the backbone's longer lengths are skipped.
    """
    results: dict[str, list] = {}
    skipped: dict[str, list] = {}
    failed: dict[str, dict] = {}
    for name in BACKBONES:
        results[name], skipped[name] = [], []
        stop = False
        for T in args.lengths:
            if stop or (name == "mlp_mixer" and T > MIXER_MAX_LEN):
                skipped[name].append(T)
                continue
            started = time.perf_counter()
            try:
                done = subprocess.run(
                    case_command(args, name, T),
                    capture_output=True,
                    text=True,
                    timeout=args.case_timeout_s,
                )
                error = None if done.returncode == 0 else f"exit {done.returncode}: " + (
                    done.stderr.strip().splitlines() or [""]
                )[-1]
            except subprocess.TimeoutExpired:
                error = f"over --case-timeout-s {args.case_timeout_s}"
            if error is None:
                row = json.loads(done.stdout.strip().splitlines()[-1])
                results[name].append(row)
                stop = row["fwd_bwd_s"] > args.budget_s
                note = f"{row['fwd_bwd_s']:.3f} s/pass"
            else:
                failed[name] = {"seq_len": T, "error": error}
                stop = True
                note = error
            print(
                f"[scaling] {name} T={T}: {note} ({time.perf_counter() - started:.0f} s wall)",
                file=sys.stderr,
                flush=True,
            )
    return results, skipped, failed


def bench_delta_rule(args, device: torch.device, per_channel: bool = False) -> dict:
    """The gated delta rule (``per_channel=False``) or KDA (True): recurrent vs chunked."""
    recurrent, chunk, dispatch, has_fla = (
        (recurrent_kda, chunk_kda, kda, HAS_FLA_KDA)
        if per_channel
        else (recurrent_gated_delta_rule, chunk_gated_delta_rule, gated_delta_rule, HAS_FLA)
    )
    B, T, H, K = 1, 1024, 4, 64
    g_shape = (B, T, H, K) if per_channel else (B, T, H)
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(B, T, H, K, generator=gen)
    k = F.normalize(torch.randn(B, T, H, K, generator=gen), dim=-1)
    v = torch.randn(B, T, H, K, generator=gen)
    g = F.logsigmoid(torch.randn(*g_shape, generator=gen) + 3)
    beta = torch.sigmoid(torch.randn(B, T, H, generator=gen))
    inputs = [t.to(device) for t in (q, k, v, g, beta)]
    # Best of at least 3 for both forms even with --quick: one pass of the fast form is too
    # easily hit by noise for a ratio to mean anything.
    repeats = max(args.repeats, 3)
    out = {"shape": {"B": B, "T": T, "H": H, "K": K, "V": K}, "chunk_size": 64, "repeats": repeats}

    def fwd_bwd(fn):
        leaves = [t.clone().requires_grad_() for t in inputs]
        return lambda: fn(*leaves)[0].sum().backward()

    def fwd(fn):
        def run():
            with torch.no_grad():
                fn(*inputs)

        return run

    for label, wrap in (("fwd_bwd", fwd_bwd), ("fwd_no_grad", fwd)):
        times = {}
        for impl, fn in (("recurrent", recurrent), ("chunk", chunk)):
            run = wrap(fn)
            run()  # burn-in
            times[impl] = time_pass(run, device, repeats)
        out[label] = {
            **{f"{k}_s": v for k, v in times.items()},
            "speedup": times["recurrent"] / times["chunk"],
        }
        print(
            f"[{'kda' if per_channel else 'delta_rule'}] {label}: chunk "
            f"{out[label]['speedup']:.1f}x recurrent",
            file=sys.stderr,
        )
    if not per_channel:
        out["target_speedup"] = 15.0
        out["target_met_fwd_bwd"] = out["fwd_bwd"]["speedup"] >= 15.0

    if device.type == "cuda" and has_fla:
        fla = {}
        for T_long in (1024, 4096, 8192):
            x = [torch.randn(4, T_long, 8, 64, device=device) for _ in range(3)]
            x[1] = F.normalize(x[1], dim=-1)
            g_long = (4, T_long, 8, 64) if per_channel else (4, T_long, 8)
            gg = F.logsigmoid(torch.randn(*g_long, device=device) + 3)
            bb = torch.sigmoid(torch.randn(4, T_long, 8, device=device))
            row = {}
            for impl in ("chunk", "fla"):
                leaves = [t.bfloat16().requires_grad_() for t in x] + [
                    gg.requires_grad_(),
                    bb.bfloat16().requires_grad_(),
                ]

                def run(leaves=leaves, impl=impl):
                    dispatch(*leaves, impl=impl)[0].float().sum().backward()

                run()
                row[f"{impl}_s"] = time_pass(run, device, args.repeats)
            row["speedup"] = row["chunk_s"] / row["fla_s"]
            fla[str(T_long)] = row
        out["torch_chunk_vs_fla_bf16_B4_H8_K64"] = fla
    return out


def cache_tensors(cache) -> list[torch.Tensor]:
    """Every tensor held by the per-layer records of a decoding cache."""
    out = []
    for record in cache.layers:
        for f in fields(record):
            value = getattr(record, f.name)
            if isinstance(value, torch.Tensor):
                out.append(value)
    return out


def bench_cache_bytes(args, device: torch.device) -> dict:
    rows: dict[str, list] = {}
    head_dim = args.dim // args.heads
    for name in BACKBONES:
        if name == "mlp_mixer":  # bidirectional only: no decoding cache
            continue
        rows[name] = []
        for T in CACHE_LENGTHS:
            torch.manual_seed(0)
            net = make_net(name, args, T, causal=True).to(device).eval()
            cache = net.init_cache()
            x = torch.randn(1, T, args.dim, device=device)
            with torch.no_grad():
                for start in range(0, T, args.prefill_chunk):
                    net(x[:, start : start + args.prefill_chunk], cache)
            tensors = cache_tensors(cache)
            logical = sum(t.numel() * t.element_size() for t in tensors)
            storages = {t.untyped_storage().data_ptr(): t.untyped_storage() for t in tensors}
            row = {
                "seq_len": T,
                "depth": len(net.blocks),
                "bytes": logical,
                "bytes_per_token": logical / T,
                "storage_bytes": sum(st.nbytes() for st in storages.values()),
            }
            if name == "transformer":
                row["kv_formula_per_token"] = 2 * args.heads * head_dim * len(net.blocks) * 4
            rows[name].append(row)
            print(f"[cache] {name} T={T}: {logical / T:.1f} bytes/token", file=sys.stderr)
            del net, cache, x, tensors
            gc.collect()
    return rows


def plot(results: dict, path: str, device: str, memory_metric: str) -> str | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no plot (pip install matplotlib)", file=sys.stderr)
        return None
    fig, (ax_t, ax_m) = plt.subplots(1, 2, figsize=(11, 4.6))
    colors = plt.get_cmap("tab20").colors
    for i, (name, rows) in enumerate(results.items()):
        if not rows:
            continue
        # solid: only full attention / the mixer (quadratic in T); dashed: holds layers linear
        # in T (Gated DeltaNet, KDA, sliding window)
        linear = any(letter in BACKBONES[name] for letter in "GKS")
        style = dict(marker="o", markersize=4, color=colors[(2 * i) % 20 + (i >= 10)],
                     linestyle="--" if linear else "-", label=name)
        lens = [r["seq_len"] for r in rows]
        ax_t.plot(lens, [r["fwd_bwd_s"] for r in rows], **style)
        ax_m.plot(lens, [r["memory_mb"] for r in rows], **style)
    for ax, title in (
        (ax_t, "forward+backward time (s)"),
        (ax_m, "memory (MiB)"),
    ):
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("sequence length")
        ax.set_title(title, fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
    ax_t.legend(fontsize=8)
    fig.suptitle(
        f"backbones on {device}: log-log, slope 1 = linear, slope 2 = quadratic", fontsize=10
    )
    fig.text(0.5, 0.01, f"memory: {memory_metric}", ha="center", fontsize=8)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=120)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short lengths, one repeat")
    parser.add_argument("--plot", default="benchmarks/backbones.png", help="PNG output path")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--depth", type=int, default=2)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timed passes; the best is kept")
    parser.add_argument(
        "--budget-s", type=float, default=30.0, help="stop a backbone after a pass this long"
    )
    parser.add_argument("--window", type=int, default=64, help="sliding-window attention window")
    parser.add_argument(
        "--prefill-chunk", type=int, default=1024, help="tokens per prefill call (cache_bytes)"
    )
    parser.add_argument(
        "--case-timeout-s", type=float, default=900.0, help="give up on one scaling case after"
    )
    parser.add_argument(
        "--json", default=None, help="also write the report here (written whole, then renamed)"
    )
    parser.add_argument(
        "--replot", metavar="JSON", help="only redraw --plot from a saved report (--json)"
    )
    parser.add_argument("--case", nargs=2, metavar=("BACKBONE", "T"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.replot:
        saved = json.loads(open(args.replot).read())
        print(plot(saved["scaling"], args.plot, saved["device"]["type"], saved["memory_metric"]))
        return
    if args.case:  # one scaling case, in the fresh process bench_scaling started
        name, T = args.case[0], int(args.case[1])
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        print(json.dumps(run_case(args, name, T, device)))
        return
    if args.quick:
        args.lengths, args.repeats, args.budget_s = [128, 256, 512], 1, min(args.budget_s, 5.0)
    else:
        args.lengths = [256, 512, 1024, 2048, 4096, 8192]
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    memory_metric = (
        "peak torch.cuda.max_memory_allocated over the pass, minus memory held before"
        if device.type == "cuda"
        else "bytes saved for backward (autograd saved tensors, distinct storages)"
    )
    scaling, skipped, failed = bench_scaling(args, device)
    report = {
        "config": {
            "quick": args.quick,
            "dim": args.dim,
            "depth": args.depth,
            "heads": args.heads,
            "batch": args.batch,
            "lengths": args.lengths,
            "repeats": args.repeats,
            "budget_s": args.budget_s,
            "causal": {name: name != "mlp_mixer" for name in BACKBONES},
            "swiglu_multiple_of": 64,
            "hybrid_pattern": hybrid_pattern(args.depth),
            "recipe_depths": {name: bench_depth(name, args.depth) for name in RECIPES},
            "window": args.window,
            "prefill_chunk": args.prefill_chunk,
            "cache_lengths": list(CACHE_LENGTHS),
        },
        "device": {
            "type": device.type,
            "name": torch.cuda.get_device_name(device)
            if device.type == "cuda"
            else f"{platform.machine()} CPU, {os.cpu_count()} cores",
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "fla": HAS_FLA,
            "fla_kda": HAS_FLA_KDA,
        },
        "memory_metric": memory_metric,
        "scaling": scaling,
        "skipped": {
            "lengths": {k: v for k, v in skipped.items() if v},
            "why": f"a pass over {args.budget_s} s at a shorter length (quadratic growth), or "
            f"mlp_mixer beyond {MIXER_MAX_LEN} tokens (its token MLP has ~8 T^2 parameters), "
            "or a failed case (under failed)",
        },
        "failed": failed,
        "delta_rule": bench_delta_rule(args, device),
        "kda": bench_delta_rule(args, device, per_channel=True),
        "cache_bytes": bench_cache_bytes(args, device),
    }
    report["plot"] = plot(scaling, args.plot, device.type, memory_metric)
    text = json.dumps(report, indent=2)
    if args.json:
        atomic_write_text(args.json, text + "\n")
    print(text)


if __name__ == "__main__":
    main()
