"""The Kimi Delta Attention (KDA) op, three ways: loop over time, chunked (pure torch), fla kernel.

KDA (Kimi Linear, 2025) is the gated delta rule with a channel-wise decay: one forget gate per key
feature, ``alpha_t = exp(g_t)`` with g_t a (K,) vector per head instead of a scalar. Layout as in
fla: q, k (B, T, H, K); v (B, T, H, V); g (B, T, H, K) log decays (<= 0); beta (B, T, H);
state (B, H, K, V). Per head and step, in the order of fla's ``naive_recurrent_kda``
(decay first, then the delta-rule correction read from the decayed state):

    S_t = (I - beta_t k_t k_t^T) Diag(alpha_t) S_{t-1} + beta_t k_t v_t^T
        = Diag(alpha_t) S_{t-1} - beta_t k_t (k_t^T Diag(alpha_t) S_{t-1}) + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

With every channel of g_t equal this is exactly ``delta_rule.recurrent_gated_delta_rule``, and the
two ops share their loop and their chunked form (delta_rule.py); only the chunked form's Gram
matrices are per channel here (``delta_rule._channel_grams``, which stays finite under decays far
below e^-88). Return values and compute dtypes follow delta_rule.py: ``(o, final_state)``, o in
v's dtype, the state in float32 (float64 for float64 inputs), autocast off inside the op.
"""

from __future__ import annotations

import torch

from .delta_rule import _channel_grams, _chunk, _decay_channels, _recurrent, dispatch

try:  # fused Triton kernels; CUDA only
    from fla.ops.kda import chunk_kda as _fla_kda

    HAS_FLA_KDA = True
except Exception:  # ImportError, or Triton failing to initialise on a machine without a GPU
    _fla_kda = None
    HAS_FLA_KDA = False


def recurrent_kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: one step at a time. Also the decoding path (T = 1)."""
    g = _decay_channels(g, q, "KDA", per_channel=True)
    return _recurrent(q, k, v, g, beta, scale, initial_state)


def chunk_kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk-parallel form (see ``delta_rule._chunk``); equal to the recurrent form up to
    rounding, for any decay (every exponent it takes is <= 0)."""
    g = _decay_channels(g, q, "KDA", per_channel=True)
    return _chunk(q, k, v, g, beta, scale, initial_state, chunk_size, _channel_grams)


def kda(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    impl: str = "auto",
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """KDA in the form ``impl`` picks (see :func:`~.delta_rule.dispatch`)."""
    forms = (recurrent_kda, chunk_kda, _fla_kda if HAS_FLA_KDA else None)
    return dispatch(forms, "KDA", q, k, v, g, beta, scale, initial_state, impl, chunk_size)
