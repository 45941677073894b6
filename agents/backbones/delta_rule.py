"""The gated delta rule op, three ways: loop over time, chunked (pure torch), fla's fused kernel.

All take fla's layout: q, k (B, T, H, K); v (B, T, H, V); g, beta (B, T, H); state (B, H, K, V).
``g`` is the log decay (``alpha = exp(g)``, g <= 0), ``beta`` the write strength in (0, 1).
Per head and step:

    S_t = alpha_t (S_{t-1} - beta_t k_t (k_t^T S_{t-1})) + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

Kimi Delta Attention (kda_rule.py) is the same rule with one decay per key channel, g
(B, T, H, K): ``alpha_t`` becomes ``Diag(alpha_t)``. Both ops run on the one loop and the one
chunked form here, which take g as (B, T, H, 1 | K); only the chunked form's Gram matrices
differ with the decay shape (``_head_grams``, ``_channel_grams``).

Every function returns ``(o, final_state)``; o has v's dtype, the state is float32 (float64
when the inputs are). Half-precision inputs are computed in float32: the triangular solve and the
long products of decays need it, and that is what fla's kernels do too.
"""

from __future__ import annotations

import functools
import math
import warnings

import torch
import torch.nn.functional as F

try:  # fused Triton kernels; CUDA only
    from fla.ops.gated_delta_rule import chunk_gated_delta_rule as _fla_chunk

    HAS_FLA = True
except Exception:  # ImportError, or Triton failing to initialise on a machine without a GPU
    _fla_chunk = None
    HAS_FLA = False

IMPLS = ("auto", "recurrent", "chunk", "fla")
SUB_CHUNK = 32  # sub-chunk length of the per-channel Gram matrices (see _channel_grams)
CHUNK_GRAIN = 16  # a fitted chunk length is a multiple of this (see fit_chunk)
_warned: set[str] = set()  # ops already warned about running without their kernel


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _outside_autocast(fn):
    """Run the op with autocast off: it chooses its own compute dtype (see the module doc), and
    autocast would silently turn its matmuls back into bf16."""

    @functools.wraps(fn)
    def wrapper(q: torch.Tensor, *args, **kwargs):
        with torch.autocast(q.device.type, enabled=False):
            return fn(q, *args, **kwargs)

    return wrapper


def _decay_channels(g: torch.Tensor, q: torch.Tensor, op: str, per_channel: bool) -> torch.Tensor:
    """``g`` as (B, T, H, 1) (one decay per head) or (B, T, H, K) (one per key channel), after
    checking it has the shape ``op`` takes: the shared forms below broadcast either alike."""
    B, T, H, K = q.shape
    want = (B, T, H, K) if per_channel else (B, T, H)
    if tuple(g.shape) != want:
        raise ValueError(f"{op}: g must have shape {want} (one log decay per "
                         f"{'key channel' if per_channel else 'head'}), got {tuple(g.shape)}")
    return g if per_channel else g[..., None]


@_outside_autocast
def _recurrent(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None,
    initial_state: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Loop over time for both decay shapes, g (B, T, H, 1 | K). In the order of fla's
    ``naive_recurrent_kda``: decay first, then the delta-rule correction read from the decayed
    state (for a scalar decay the order does not matter)."""
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt = _compute_dtype(q)
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (t.to(dt) for t in (q, k, v, g, beta))
    q = q * scale
    alpha = g.exp()  # (B, T, H, 1 | K)
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


def fit_chunk(T: int, chunk_size: int) -> int:
    """The chunk length the chunked form runs a length-``T`` sequence with: the fewest chunks of
    at most ``chunk_size`` (``ceil(T / chunk_size)``), each as short as they allow, rounded up
    to a multiple of ``CHUNK_GRAIN`` (16), never above ``chunk_size``.

    The result is the same for any chunk length (up to rounding); the cost is not: a chunk's Gram
    matrices and triangular solve grow as its length squared and cubed, so a 16-token grid padded
    to one 64-token chunk does 16x the Gram work of one 16-token chunk (81 tokens: two chunks of
    48 instead of 64)."""
    chunks = -(-T // chunk_size)
    per_chunk = -(-T // max(chunks, 1))
    return max(1, min(chunk_size, -(-per_chunk // CHUNK_GRAIN) * CHUNK_GRAIN))


def _head_grams(q: torch.Tensor, k: torch.Tensor, b: torch.Tensor, beta: torch.Tensor):
    """One decay per head: ``A = beta_i e^{b_i - b_j} k_i . k_j`` (j < i) and
    ``M = e^{b_i - b_j} q_i . k_j`` (j <= i); b (..., C, 1), beta (..., C)."""
    C = q.shape[-2]
    b = b[..., 0]
    incl = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    # Mask before exp: above the diagonal b_i - b_j > 0 and could overflow.
    decay = (b[..., :, None] - b[..., None, :]).masked_fill(~incl, float("-inf")).exp()
    A = (beta[..., None] * (k @ k.transpose(-1, -2)) * decay).tril(-1)  # (..., C, C)
    return A, (q @ k.transpose(-1, -2)) * decay  # M: zero above the diagonal


def _channel_grams(q: torch.Tensor, k: torch.Tensor, b: torch.Tensor, beta: torch.Tensor):
    """One decay per key channel: ``A = beta_i sum_d k_id k_jd e^{b_id - b_jd}`` (j < i) and
    ``M = sum_d q_id k_jd e^{b_id - b_jd}`` (j <= i); b (..., C, K), beta (..., C).

    Factoring ``exp(b_i - b_j) = exp(b_i) exp(-b_j)`` would overflow ``exp(-b_j)`` once a chunk
    decays past e^-88 (float32), which a fast channel reaches in a few steps. So the chunk is cut
    into sub-chunks of ``SUB_CHUNK``: for sub-chunks I > J the product is split at r_J, the last b
    of sub-chunk J, into ``exp(b_i - r_J) * exp(r_J - b_j)``, two factors <= 1 (no overflow; an
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
    return beta[..., None] * out[0].tril(-1), out[1]


@_outside_autocast
def _chunk(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None,
    initial_state: torch.Tensor | None,
    chunk_size: int,
    grams,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk-parallel form (WY / UT transform) for both decay shapes, g (B, T, H, 1 | K).

    Inside a chunk let b_i = g_1 + ... + g_i (per head, or a (K,) vector per key channel) and
    Gamma_i = Diag(e^{b_i}). Write the update as S_i = Gamma_i S_{i-1} + k_i u_i^T with
    u_i = beta_i (v_i - (Gamma_i S_{i-1})^T k_i). Unrolled,
        u_i = beta_i (v_i - S_0^T Gamma_i k_i - sum_{j<i} (k_i^T Diag(e^{b_i - b_j}) k_j) u_j),
    a unit lower-triangular system (I + A) U = beta V - (beta e^b * K) S_0 with
    A_ij = beta_i sum_d k_id k_jd e^{b_id - b_jd} (j < i). Solving it once per chunk for both
    right-hand sides gives U = U0 - W S_0 with U0, W independent of S_0, so all chunks are solved
    in one batched triangular solve and only cheap matmuls stay in the loop over chunks:
        O   = (e^b * q) S_0 + M U,   M_ij = sum_d q_id k_jd e^{b_id - b_jd} [j <= i]
        S_C = e^{b_C} * S_0 + (e^{b_C - b} * k)^T U.
    Only the Gram matrices A and M depend on the decay shape: ``grams`` is ``_head_grams`` or
    ``_channel_grams``; every exponent used is <= 0. The chunk length is ``chunk_size`` fitted to
    T (:func:`fit_chunk`); T not a multiple of it is padded with beta = 0, g = 0 (no write, no
    decay), so the final state is exact.
    """
    B, T, H, K = q.shape
    V = v.shape[-1]
    C = fit_chunk(T, chunk_size)
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

    q, k, v, g = chunks(q), chunks(k), chunks(v), chunks(g)  # g: (BH, N, C, 1 | K)
    beta = chunks(beta[..., None])[..., 0]  # (BH, N, C)
    b = g.cumsum(-2)  # cumulative log decay inside each chunk
    A, attn = grams(q, k, b, beta)  # (BH, N, C, C): strictly lower, lower triangular
    eye = torch.eye(C, dtype=dt, device=q.device)
    b_last = b[..., -1:, :]  # (BH, N, 1, 1 | K)
    k_dec_t = (k * (b_last - b).exp()).transpose(-1, -2).contiguous()  # (BH, N, K, C)
    if N == 1 and initial_state is None:
        # One chunk from an empty state (a whole grid, no cache): U = U0, so neither W nor the
        # loop is needed; the solve has half the right-hand side.
        U = torch.linalg.solve_triangular(A + eye, beta[..., None] * v, upper=False,
                                          unitriangular=True)  # (BH, 1, C, V)
        o = (attn @ U).reshape(B, H, C, V).transpose(1, 2)[:, :T]  # (B, T, H, V)
        return o.to(v.dtype), (k_dec_t @ U).reshape(B, H, K, V)
    rhs = torch.cat((beta[..., None] * v, beta[..., None] * b.exp() * k), dim=-1)
    sol = torch.linalg.solve_triangular(A + eye, rhs, upper=False, unitriangular=True)
    # contiguous once here, not as a hidden copy inside every baddbmm of the loop
    U0, W = sol[..., :V].contiguous(), sol[..., V:].contiguous()  # (BH, N, C, V), (BH, N, C, K)

    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(dt)
    S = S.reshape(B * H, K, V)
    # Only the state recursion is sequential: keep the state entering each chunk and each U,
    # and compute the outputs for all chunks at once afterwards. unbind rather than indexing in
    # the loop: an index's backward writes into a zero tensor the size of the whole input,
    # which would make the backward pass quadratic in the number of chunks.
    starts, Us = [], []
    for U0_n, W_n, k_n, decay_n in zip(
        U0.unbind(1), W.unbind(1), k_dec_t.unbind(1), b_last.exp().unbind(1)
    ):
        starts.append(S)
        U = torch.baddbmm(U0_n, W_n, S, alpha=-1)  # U0 - W S: (BH, C, V)
        Us.append(U)
        S = torch.baddbmm(decay_n.transpose(-1, -2) * S, k_n, U)  # decayed S + (e^{b_C-b} k)^T U
    S0, U = torch.stack(starts, dim=1), torch.stack(Us, dim=1)  # (BH, N, K, V), (BH, N, C, V)
    o = (q * b.exp()) @ S0 + attn @ U  # (BH, N, C, V)
    o = o.reshape(B, H, N * C, V).transpose(1, 2)[:, :T]  # (B, T, H, V)
    return o.to(v.dtype), S.reshape(B, H, K, V)


def recurrent_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference: one step at a time. Also the decoding path (T = 1)."""
    g = _decay_channels(g, q, "gated delta rule", per_channel=False)
    return _recurrent(q, k, v, g, beta, scale, initial_state)


def chunk_gated_delta_rule(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    g: torch.Tensor,
    beta: torch.Tensor,
    scale: float | None = None,
    initial_state: torch.Tensor | None = None,
    chunk_size: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Chunk-parallel form (see ``_chunk``); equal to the recurrent form up to rounding."""
    g = _decay_channels(g, q, "gated delta rule", per_channel=False)
    return _chunk(q, k, v, g, beta, scale, initial_state, chunk_size, _head_grams)


def dispatch(forms: tuple, name: str, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
             g: torch.Tensor, beta: torch.Tensor, scale: float | None,
             initial_state: torch.Tensor | None, impl: str, chunk_size: int):
    """Run one of an op's three forms, ``forms = (recurrent, chunk, fused or None)``.

    ``auto``: the fused fla kernel on CUDA when installed, else the loop for one token (decoding),
    else the chunked form; one warning when CUDA runs without the kernel.
    """
    recurrent, chunk, fused = forms
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got impl={impl!r}")
    if impl == "auto":
        if q.is_cuda and fused is not None:
            impl = "fla"
        else:
            if q.is_cuda and name not in _warned:
                warnings.warn(f"flash-linear-attention (fla) has no {name} kernel here; the "
                              "pure-torch chunked form runs on CUDA (slower). pip install "
                              "flash-linear-attention for the fused kernels.", stacklevel=3)
                _warned.add(name)
            impl = "recurrent" if q.shape[1] == 1 else "chunk"
    if impl == "recurrent":
        return recurrent(q, k, v, g, beta, scale, initial_state)
    if impl == "chunk":
        return chunk(q, k, v, g, beta, scale, initial_state, chunk_size)
    if fused is None:
        raise ValueError(f"impl='fla' for {name} needs flash-linear-attention "
                         "(pip install flash-linear-attention)")
    if not q.is_cuda:
        raise ValueError(f"impl='fla' runs on CUDA only, got tensors on {q.device}")
    if initial_state is not None:
        initial_state = initial_state.float()
    # As fla's layers call the kernels: g (log decay) in float32, beta in the activation dtype,
    # q and k already L2-normalised by the caller.
    o, state = fused(q, k, v, g.float(), beta.to(q.dtype), scale=scale,
                     initial_state=initial_state, output_final_state=True)
    return o, state.float()


def gated_delta_rule(
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
    """The gated delta rule in the form ``impl`` picks (see :func:`dispatch`)."""
    forms = (recurrent_gated_delta_rule, chunk_gated_delta_rule, _fla_chunk if HAS_FLA else None)
    return dispatch(forms, "gated delta rule", q, k, v, g, beta, scale, initial_state, impl,
                    chunk_size)
