"""The per-puzzle embedding table, trained sparsely as TRM trains it.

A table of ``num_identifiers`` rows (ARC: one per augmented task, about a million) of which a
batch touches a few hundred. TRM keeps it out of the network's optimiser: the table is a buffer,
each training forward copies the batch's rows into a fresh leaf tensor that takes the gradient,
and a sign-SGD step (``tracegym.training.optim.SparseSignSGD``) updates only those rows, with
weight decay on those rows only. A dense Adam table would decay every absent row every step.

Each training lookup (training mode, grad enabled) hooks its leaf: its gradient arrives with
the backward, so a lookup that never gets one leaves nothing behind.
:meth:`SparsePuzzleEmbedding.row_gradients` hands the optimiser the rows and their gradients and
:meth:`SparsePuzzleEmbedding.clear` forgets them (the optimiser's ``zero_grad``); like ``.grad``
they accumulate until then (coalesced per row past ``MAX_PENDING`` backwards, so a loop that
never clears holds one gradient per row used).
"""

from __future__ import annotations

import torch
from torch import nn

MAX_PENDING = 64  # backwards kept apart before they are summed per row


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
        self._grads: list[tuple[torch.Tensor, torch.Tensor]] = []

    # outside torch.compile: the hook is Python state, and the lookup is one gather
    @torch.compiler.disable
    def forward(self, identifiers: torch.Tensor) -> torch.Tensor:
        rows = self.weight[identifiers]  # advanced indexing copies: rows is not a view
        if not (self.training and torch.is_grad_enabled()):
            return rows
        ids = identifiers.detach().reshape(-1).long()
        rows.requires_grad_(True)
        rows.register_hook(lambda grad: self._keep(ids, grad))
        return rows

    def _keep(self, ids: torch.Tensor, grad: torch.Tensor) -> None:
        self._grads.append((ids, grad.reshape(-1, self.weight.shape[1])))
        if len(self._grads) > MAX_PENDING:
            self._grads = [self._coalesced()]

    def _coalesced(self) -> tuple[torch.Tensor, torch.Tensor]:
        ids = torch.cat([i for i, _ in self._grads])
        grads = torch.cat([g for _, g in self._grads])
        rows, where = ids.unique(return_inverse=True)
        return rows, grads.new_zeros(len(rows), grads.shape[1]).index_add_(0, where, grads)

    def row_gradients(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(identifiers (N,), gradients (N, dim))`` of the rows looked up in training whose
        gradients arrived since the last :meth:`clear`; an identifier may repeat (the optimiser
        sums its gradients)."""
        if not self._grads:
            return (torch.zeros(0, dtype=torch.long, device=self.weight.device),
                    self.weight.new_zeros(0, self.weight.shape[1]))
        return (torch.cat([i for i, _ in self._grads]), torch.cat([g for _, g in self._grads]))

    def clear(self) -> None:
        """Forget the recorded lookups (their gradients have been applied or are discarded)."""
        self._grads.clear()

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, {self.weight.shape[1]}, sparse"
