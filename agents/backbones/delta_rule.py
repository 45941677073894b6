"""The gated delta rule op, three ways: loop over time, chunked (pure torch), fla's fused kernel.

All take fla's layout: q, k (B, T, H, K); v (B, T, H, V); g, beta (B, T, H); state (B, H, K, V).
``g`` is the log decay (``alpha = exp(g)``, g <= 0), ``beta`` the write strength in (0, 1).
Per head and step:

    S_t = alpha_t (S_{t-1} - beta_t k_t (k_t^T S_{t-1})) + beta_t k_t v_t^T
    o_t = S_t^T (scale * q_t)

Every function returns ``(o, final_state)``; o has v's dtype, the state is float32 (float64
when the inputs are). Half-precision inputs are computed in float32: the triangular solve and the
long products of decays need it, and that is what fla's kernels do too.
"""

from __future__ import annotations

import functools
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


@_outside_autocast
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
    B, T, H, K = q.shape
    V = v.shape[-1]
    dt = _compute_dtype(q)
    scale = K**-0.5 if scale is None else scale
    q, k, v, g, beta = (t.to(dt) for t in (q, k, v, g, beta))
    q = q * scale
    alpha = g.exp()
    S = q.new_zeros(B, H, K, V) if initial_state is None else initial_state.to(dt)
    outs = []
    for t in range(T):
        k_t = k[:, t]  # (B, H, K)
        S = S * alpha[:, t, :, None, None]
        old = torch.einsum("bhk,bhkv->bhv", k_t, S)  # what S already returns for k_t
        u = beta[:, t, :, None] * (v[:, t] - old)  # (B, H, V)
        S = S + k_t[..., None] * u[..., None, :]
        outs.append(torch.einsum("bhk,bhkv->bhv", q[:, t], S))
    o = torch.stack(outs, dim=1) if outs else v.new_zeros(B, 0, H, V)
    return o.to(v.dtype), S


@_outside_autocast
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
    """Chunk-parallel form (WY / UT transform); equal to the recurrent form up to rounding.

    Inside a chunk with local cumulative log decay b_i = g_1 + ... + g_i, write the update as
    S_i = alpha_i S_{i-1} + k_i u_i^T with u_i = beta_i (v_i - (alpha_i S_{i-1})^T k_i). Unrolled,
        u_i = beta_i (v_i - e^{b_i} S_0^T k_i - sum_{j<i} e^{b_i - b_j} (k_i . k_j) u_j),
    a unit lower-triangular system (I + A) U = beta V - (beta e^b K) S_0 with
    A_ij = beta_i e^{b_i - b_j} k_i . k_j (j < i). Solving it once per chunk for both right-hand
    sides gives U = U0 - W S_0 with U0, W independent of S_0, so all chunks are solved in one
    batched triangular solve and only cheap matmuls stay in the loop over chunks:
        O   = (e^b q) S_0 + (q k^T * e^{b_i - b_j} [j <= i]) U
        S_C = e^{b_C} S_0 + (e^{b_C - b} k)^T U.
    T not a multiple of ``chunk_size`` is padded with beta = 0, g = 0 (no write, no decay), so the
    final state is exact.
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
        q, k, v = (F.pad(t, (0, 0, 0, 0, 0, pad)) for t in (q, k, v))
        g, beta = (F.pad(t, (0, 0, 0, pad)) for t in (g, beta))
    N = (T + pad) // C

    def chunks(t: torch.Tensor) -> torch.Tensor:  # (B, N*C, H, *) -> (B*H, N, C, *)
        return t.reshape(B, N, C, H, -1).permute(0, 3, 1, 2, 4).reshape(B * H, N, C, -1)

    q, k, v = chunks(q), chunks(k), chunks(v)
    g, beta = chunks(g[..., None])[..., 0], chunks(beta[..., None])[..., 0]  # (BH, N, C)
    b = g.cumsum(-1)
    incl = torch.ones(C, C, dtype=torch.bool, device=q.device).tril()
    # Mask before exp: above the diagonal b_i - b_j > 0 and could overflow.
    decay = (b[..., :, None] - b[..., None, :]).masked_fill(~incl, float("-inf")).exp()
    A = (beta[..., None] * (k @ k.transpose(-1, -2)) * decay).tril(-1)  # (BH, N, C, C)
    eye = torch.eye(C, dtype=dt, device=q.device)
    rhs = torch.cat((beta[..., None] * v, (beta * b.exp())[..., None] * k), dim=-1)
    sol = torch.linalg.solve_triangular(A + eye, rhs, upper=False, unitriangular=True)
    # contiguous once here, not as a hidden copy inside every baddbmm of the loop
    U0, W = sol[..., :V].contiguous(), sol[..., V:].contiguous()  # (BH, N, C, V), (BH, N, C, K)
    b_last = b[..., -1:]  # (BH, N, 1)
    k_dec_t = (k * (b_last - b).exp()[..., None]).transpose(-1, -2).contiguous()  # (BH, N, K, C)

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
        S = torch.baddbmm(decay_n[..., None] * S, k_n, U)  # decayed S + (e^{b_C - b} k)^T U
    S0, U = torch.stack(starts, dim=1), torch.stack(Us, dim=1)  # (BH, N, K, V), (BH, N, C, V)
    attn = (q @ k.transpose(-1, -2)) * decay  # (BH, N, C, C), zero above the diagonal
    o = (q * b.exp()[..., None]) @ S0 + attn @ U  # (BH, N, C, V)
    o = o.reshape(B, H, N * C, V).transpose(1, 2)[:, :T]  # (B, T, H, V)
    S = S.reshape(B, H, K, V)
    return o.to(v.dtype), S


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
