"""The Kimi Delta Attention (KDA) op, three ways: loop over time, chunked (pure torch), fla kernel.

KDA (Kimi Linear, 2025) is the gated delta rule with a channel-wise decay: one forget gate per key
feature, ``alpha_t = exp(g_t)`` with g_t a (K,) vector per head instead of a scalar. Layout as in
fla: q, k (B, T, H, K); v (B, T, H, V); g (B, T, H, K) log decays (<= 0); beta (B, T, H);
state (B, H, K, V). Per head and step, in the order of fla's ``naive_recurrent_kda``
(decay first, then the delta-rule correction read from the decayed state):

    S_t = (I - beta_t k_t k_t^T) Diag(alpha_t) S_{t-1} + beta_t k_t v_t^T
        = Diag(alpha_t) S_{t-1} - beta_t k_t (k_t^T Diag(alpha_t) S_{t-1}) + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

With every channel of g_t equal this is exactly ``delta_rule.recurrent_gated_delta_rule``.
Return values and compute dtypes follow delta_rule.py: ``(o, final_state)``, o in v's dtype, the
state in float32 (float64 for float64 inputs), autocast off inside the op.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .delta_rule import _compute_dtype, _outside_autocast, dispatch

try:  # fused Triton kernels; CUDA only
    from fla.ops.kda import chunk_kda as _fla_kda

    HAS_FLA_KDA = True
except Exception:  # ImportError, or Triton failing to initialise on a machine without a GPU
    _fla_kda = None
    HAS_FLA_KDA = False

SUB_CHUNK = 32


@_outside_autocast
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
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt = _compute_dtype(q)
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (t.to(dt) for t in (q, k, v, g, beta))
    q = q * scale
    alpha = g.exp()  # (B, T, H, K)
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(dt)
    outs = []
    for t in range(T):
        k_t = k[:, t]  # (B, H, K)
        S = S * alpha[:, t, :, :, None]  # Diag(alpha_t) S_{t-1}
        old = torch.einsum("bhk,bhkv->bhv", k_t, S)  # what the decayed S returns for k_t
        u = beta[:, t, :, None] * (v[:, t] - old)  # (B, H, V)
        S = S + k_t[..., None] * u[..., None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(B, 0, H, V)
    return o.to(v.dtype), S


def _decayed_grams(
    q: torch.Tensor, k: torch.Tensor, b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``M(x)_ij = sum_d x_id k_jd exp(b_id - b_jd)`` for x = k (j < i) and x = q (j <= i), else 0.

    q, k, b: (..., C, K), b the non-increasing cumulative log decay inside one chunk. Factoring
    ``exp(b_i - b_j) = exp(b_i) exp(-b_j)`` would overflow ``exp(-b_j)`` once a chunk decays
    past e^-88 (float32), which a fast channel reaches in a few steps. So the chunk is cut into
    sub-chunks of ``SUB_CHUNK``: for sub-chunks I > J the product is split at r_J, the last b of
    sub-chunk J, into ``exp(b_i - r_J) * exp(r_J - b_j)``, two factors <= 1 (no overflow; an
    underflow to 0 only drops a term that is smaller still); inside a diagonal sub-chunk the
    (c, c, K) exponents are formed explicitly and masked before exp. The decay factors are
    shared by both products.
    """
    *lead, C, K = q.shape
    c = math.gcd(C, SUB_CHUNK)
    n = C // c
    qs, ks, bs = (t.reshape(*lead, n, c, K) for t in (q, k, b))  # (..., n, c, K)
    tri = torch.ones(c, c, dtype=torch.bool, device=q.device).tril()
    # Diagonal sub-chunks: (..., n, c, c, K) exponents, masked before exp (above the diagonal
    # they are positive and could overflow); k_j exp(b_i - b_j) formed once for both products.
    diff = (bs[..., :, None, :] - bs[..., None, :, :]).masked_fill(~tri[..., None], float("-inf"))
    k_dec = ks[..., None, :, :] * diff.exp()  # (..., n, i, j, K)
    # Off-diagonal sub-chunks I > J, split at r_J.
    r = bs[..., -1, :]  # (..., n, K)
    below = torch.ones(n, n, dtype=torch.bool, device=q.device).tril(-1)  # [I, J]: I > J
    expo = (bs[..., :, None, :, :] - r[..., None, :, None, :]).masked_fill(
        ~below[:, :, None, None], float("-inf")
    )
    left_decay = expo.exp()  # (..., nI, nJ, c, K)
    right = (ks * (r[..., None, :] - bs).exp())[..., None, :, :, :].transpose(-1, -2)
    eye = torch.eye(n, dtype=torch.bool, device=q.device)[:, :, None, None]
    out = []
    for xs in (ks, qs):
        diag = torch.einsum("...id,...ijd->...ij", xs, k_dec)  # (..., n, c, c)
        blocks = (xs[..., :, None, :, :] * left_decay) @ right  # (..., nI, nJ, c, c)
        blocks = torch.where(eye, diag[..., :, None, :, :], blocks)
        out.append(blocks.transpose(-3, -2).reshape(*lead, C, C))  # (..., nI, c, nJ, c)
    return out[0].tril(-1), out[1]


@_outside_autocast
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
    """Chunk-parallel form (WY / UT transform, per-channel decays); equal to the recurrent form.

    As ``delta_rule.chunk_gated_delta_rule`` with the scalar decays made diagonal matrices:
    inside a chunk let b_i = g_1 + ... + g_i (a (K,) vector) and Gamma_i = Diag(exp(b_i)).
    The write u_i = beta_i (v_i - S_0^T Gamma_i k_i - sum_{j<i} (k_i^T Diag(e^{b_i - b_j}) k_j) u_j)
    is the unit lower-triangular system (I + A) U = beta V - (beta e^b * K) S_0 with
    A_ij = beta_i sum_d k_id k_jd e^{b_id - b_jd} (j < i), solved once for both right-hand sides:
    U = U0 - W S_0. Then
        O   = (e^b * q) S_0 + M U,   M_ij = sum_d q_id k_jd e^{b_id - b_jd} [j <= i]
        S_C = e^{b_C} * S_0 + (e^{b_C - b} * k)^T U.
    Every exponent used is <= 0 (relative decays only; see ``_decayed_grams``). T not a multiple
    of ``chunk_size`` is padded with beta = 0, g = 0 (no write, no decay): the final state is exact.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    C = chunk_size
    dt = _compute_dtype(q)
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (t.to(dt) for t in (q, k, v, g, beta))
    q = q * scale
    pad = (-T) % C
    if pad:
        q, k, v, g = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v, g))
        beta = F.pad(beta, (0, 0, 0, pad))
    N = (T + pad) // C

    def chunks(t: torch.Tensor) -> torch.Tensor:  # (B, N*C, H, *) -> (B*H, N, C, *)
        return t.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4).reshape(B * H, N, C, -1)

    q, k, v, g = chunks(q), chunks(k), chunks(v), chunks(g)  # g: (BH, N, C, K)
    beta = chunks(beta[..., None])[..., 0]  # (BH, N, C)
    b = g.cumsum(-2)  # per-channel cumulative log decay inside each chunk
    gram_kk, attn = _decayed_grams(q, k, b)  # (BH, N, C, C): strictly lower, lower triangular
    A = beta[..., None] * gram_kk
    eye = torch.eye(C, dtype=dt, device=q.device)
    rhs = torch.cat((beta[..., None] * v, beta[..., None] * b.exp() * k), dim=-1)
    sol = torch.linalg.solve_triangular(A + eye, rhs, upper=False, unitriangular=True)
    U0, W = sol[..., :V].contiguous(), sol[..., V:].contiguous()  # (BH, N, C, V), (BH, N, C, K)
    b_last = b[..., -1:, :]  # (BH, N, 1, K)
    k_dec_t = (k * (b_last - b).exp()).transpose(-1, -2).contiguous()  # (BH, N, K, C)

    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(dt)
    S = S.reshape(B * H, K, V)
    # Only the state recursion is sequential (unbind, not indexing: see delta_rule.py).
    starts, Us = [], []
    for U0_n, W_n, k_n, decay_n in zip(
        U0.unbind(1), W.unbind(1), k_dec_t.unbind(1), b_last.exp().unbind(1)
    ):
        starts.append(S)
        U = torch.baddbmm(U0_n, W_n, S, alpha=-1)  # U0 - W S: (BH, C, V)
        Us.append(U)
        S = torch.baddbmm(decay_n.transpose(-1, -2) * S, k_n, U)  # (BH, K, V)
    S0, U = torch.stack(starts, dim=1), torch.stack(Us, dim=1)  # (BH, N, K, V), (BH, N, C, V)
    o = (q * b.exp()) @ S0 + attn @ U  # (BH, N, C, V)
    o = o.reshape(B, H, N * C, V).transpose(1, 2)[:, :T]  # (B, T, H, V)
    return o.to(v.dtype), S.reshape(B, H, K, V)


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
