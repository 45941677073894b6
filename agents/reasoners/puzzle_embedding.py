"""The per-puzzle embedding table, trained sparsely as TRM trains it.

A table of ``num_identifiers`` rows (ARC: one per augmented task, about a million) of which a
batch touches a few hundred. TRM keeps it out of the network's optimiser: the table is a buffer,
each training forward copies the batch's rows into a fresh leaf tensor that takes the gradient,
and a sign-SGD step (``tracegym.training.optim.SparseSignSGD``) updates only those rows, with
weight decay on those rows only. A dense Adam table would decay every absent row every step.

The module records ``(identifiers, leaf)`` for every forward in training mode with grad enabled;
:meth:`SparsePuzzleEmbedding.row_gradients` hands the optimiser the rows and their gradients and
:meth:`SparsePuzzleEmbedding.clear` forgets them (the optimiser's ``zero_grad``).
"""

from __future__ import annotations

import torch
from torch import nn


class SparsePuzzleEmbedding(nn.Module):
    """``(B,) identifiers -> (B, dim)`` rows of a zero-initialised table kept as a buffer
    (``weight``, in the state dict but not among the parameters: no Adam, no EMA, no clipping).

    Args:
        num_embeddings: rows (``num_puzzle_identifiers``).
        dim: width of a row (``puzzle_emb_dim``).
    """

    def __init__(self, num_embeddings: int, dim: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(num_embeddings, dim))
        self._used: list[tuple[torch.Tensor, torch.Tensor]] = []

    # outside torch.compile: the recording is Python state, and the lookup is one gather
    @torch.compiler.disable
    def forward(self, identifiers: torch.Tensor) -> torch.Tensor:
        rows = self.weight[identifiers]  # advanced indexing copies: rows is not a view
        if not (self.training and torch.is_grad_enabled()):
            return rows
        rows.requires_grad_(True)
        self._used.append((identifiers.detach(), rows))
        return rows

    def row_gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(identifiers (N,), gradients (N, dim))`` of every row looked up in training since
        the last :meth:`clear` that got a gradient; an identifier may repeat (the optimiser sums
        its gradients)."""
        used = [(ids, rows.grad) for ids, rows in self._used if rows.grad is not None]
        if not used:
            return (torch.zeros(0, dtype=torch.long, device=self.weight.device),
                    self.weight.new_zeros(0, self.weight.shape[1]))
        return (torch.cat([ids.reshape(-1).long() for ids, _ in used]),
                torch.cat([g.reshape(-1, self.weight.shape[1]) for _, g in used]))

    def clear(self) -> None:
        """Forget the recorded lookups (their gradients have been applied or are discarded)."""
        self._used.clear()

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, sparse"
