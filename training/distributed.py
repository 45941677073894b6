"""The Trainer's data parallelism (``torchrun --nproc_per_node=K``): rank, world size and the
few collectives its loop needs, each a no-op on one process.

Why not ``DistributedDataParallel``: a reasoner's ``supervision_steps`` is not ``forward``, so
DDP's hooks would not see its backward passes. The loop calls :meth:`Distributed.sync_step`
after each backward instead, which does what DDP's reducer does, bucketed the same way: the
gradients are copied into flat buffers of about ``bucket_mb`` MiB and each buffer is averaged
with one all-reduce (DDP's default bucket is 25 MiB), not one all-reduce per tensor. The few
flags the ranks must agree on in a step (has a step, wants another, saw a signal) travel at the
end of the first buffer, so agreeing on them costs no collective of its own.
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist
from torch import nn

BUCKET_MB = 25  # DistributedDataParallel's default bucket_cap_mb


class Distributed:
    """Rank, world size and collectives from torchrun's environment; one process when unset."""

    def __init__(self, device_hint: str, *, bucket_mb: float = BUCKET_MB):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        self.bucket_bytes = int(bucket_mb * 2**20)
        self.owns_group = False
        if self.world > 1 and not dist.is_initialized():
            wants_gpu = device_hint != "cpu" and torch.cuda.is_available()
            dist.init_process_group(backend="nccl" if wants_gpu else "gloo")
            self.owns_group = True

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def agree(self, flags: list[bool], device: torch.device) -> list[bool]:
        """Each flag true on any rank, in one all-reduce (the flags as given on one process)."""
        if self.world == 1:
            return list(flags)
        t = torch.tensor([float(f) for f in flags], device=device)
        dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return [v > 0 for v in t.tolist()]

    def buckets(self, params: list[nn.Parameter]) -> list[list[nn.Parameter]]:
        """``params`` cut into runs of one dtype and device of at most ``bucket_bytes`` each (a
        tensor larger than that is a bucket of its own), in order."""
        out: list[list[nn.Parameter]] = []
        size = 0
        for p in params:
            nbytes = p.numel() * p.element_size()
            if (not out or size + nbytes > self.bucket_bytes
                    or (p.dtype, p.device) != (out[-1][0].dtype, out[-1][0].device)):
                out.append([])
                size = 0
            out[-1].append(p)
            size += nbytes
        return out

    def sync_step(self, params: list[nn.Parameter], flags: list[float],
                  device: torch.device) -> list[float]:
        """Average the gradients of ``params`` over the ranks and sum ``flags`` over them, in one
        all-reduce per bucket; returns the summed flags (a host read: the loop needs them).

        A parameter without a gradient (a rank with no step in this batch, a branch its step did
        not use) contributes zeros and gets the average, as every rank must join every bucket.
        Afterwards each ``p.grad`` is a view into its bucket's buffer.
        """
        if self.world == 1:
            return list(flags)
        buckets = self.buckets(params)
        buffers, handles = [], []
        for i, bucket in enumerate(buckets):
            parts = [p.grad.reshape(-1) if p.grad is not None
                     else torch.zeros(p.numel(), dtype=p.dtype, device=p.device) for p in bucket]
            if i == 0:  # the flags ride at the end of the first bucket
                parts.append(torch.tensor(flags, dtype=bucket[0].dtype, device=bucket[0].device))
            buffers.append(torch.cat(parts))
            handles.append(dist.all_reduce(buffers[-1], op=dist.ReduceOp.SUM, async_op=True))
        if not buckets:  # nothing to train: the flags alone
            buffers.append(torch.tensor(flags, dtype=torch.float32, device=device))
            handles.append(dist.all_reduce(buffers[-1], op=dist.ReduceOp.SUM, async_op=True))
        for handle in handles:
            handle.wait()
        for bucket, flat in zip(buckets, buffers):
            n_grads = sum(p.numel() for p in bucket)
            flat[:n_grads].div_(self.world)
            for p, grad in zip(bucket, flat[:n_grads].split([p.numel() for p in bucket])):
                p.grad = grad.view(p.shape)
        return buffers[0][len(buffers[0]) - len(flags):].tolist()

    def broadcast_parameters(self, module: nn.Module) -> None:
        """Rank 0's weights and buffers on every rank (the same initial model everywhere)."""
        if self.world > 1:
            for t in module.state_dict().values():
                dist.broadcast(t, src=0)

    def barrier(self) -> None:
        """Wait until every rank gets here (a no-op on one process)."""
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.owns_group:
            dist.destroy_process_group()
