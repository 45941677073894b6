"""The newer backbones: KDA (op and layer), multi-head latent attention, sliding-window attention,
and the hybrid recipes by name. The KDA op's chunked form equals its loop-over-time reference;
decoding with a cache equals the full pass; caches have the documented sizes; gradients reach
every parameter; windows and causality hold; bad configurations fail with the valid choices."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from tracegym.agents.backbones import (
    BACKBONES,
    HAS_FLA_KDA,
    MIXERS,
    build_backbone,
    chunk_gated_delta_rule,
    chunk_kda,
    kda,
    recurrent_gated_delta_rule,
    recurrent_kda,
)
from tracegym.agents.backbones.cache import LatentCache, WindowCache
from tracegym.agents.backbones.mla import MultiHeadLatentAttention
from tracegym.agents.backbones.sliding_window import SlidingWindowAttention, window_mask

NEW = ["kda", "mla", "sliding_window", "qwen3_next", "kimi_linear", "gdn_h1"]
# window 5 < seq_len 24: the sliding window is exercised (and its block-local path, T > 2 window).
SMALL = dict(dim=16, depth=4, heads=2, seq_len=24, multiple_of=8, chunk_size=16, window=5)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny tensors: extra intra-op threads only add hand-off time on a shared machine.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def kda_inputs(B, T, H, K, V, dtype, seed=0, initial=False, decay_scale=1.0):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k, v = rnd(B, T, H, K), F.normalize(rnd(B, T, H, K), dim=-1), rnd(B, T, H, V)
    g = F.logsigmoid(rnd(B, T, H, K) + 3) * decay_scale  # per-channel log decays
    beta = torch.sigmoid(rnd(B, T, H))
    s0 = rnd(B, H, K, V) if initial else None
    return q, k, v, g, beta, s0


# ----------------------------------------------------------------------------- KDA op


@pytest.mark.parametrize("T", [1, 15, 16, 37, 100])
@pytest.mark.parametrize("chunk", [16, 64, 24])
@pytest.mark.parametrize("initial", [False, True])
def test_kda__chunk_equals_recurrent_float64(T, chunk, initial):
    q, k, v, g, beta, s0 = kda_inputs(2, T, 3, 8, 6, torch.float64, seed=T, initial=initial)
    o_ref, s_ref = recurrent_kda(q, k, v, g, beta, initial_state=s0)
    o, s = chunk_kda(q, k, v, g, beta, initial_state=s0, chunk_size=chunk)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=0)


def test_kda__equal_channels_is_the_gated_delta_rule():
    q, k, v, g, beta, s0 = kda_inputs(2, 40, 3, 8, 6, torch.float64, seed=1, initial=True)
    g_head = g[..., 0]
    g_same = g_head[..., None].expand_as(g)
    o_ref, s_ref = recurrent_gated_delta_rule(q, k, v, g_head, beta, initial_state=s0)
    for o, s in (
        recurrent_kda(q, k, v, g_same, beta, initial_state=s0),
        chunk_kda(q, k, v, g_same, beta, initial_state=s0, chunk_size=16),
    ):
        torch.testing.assert_close(o, o_ref, atol=1e-10, rtol=0)
        torch.testing.assert_close(s, s_ref, atol=1e-10, rtol=0)
    o_gdn, _ = chunk_gated_delta_rule(q, k, v, g_head, beta, initial_state=s0, chunk_size=16)
    torch.testing.assert_close(o_gdn, o_ref, atol=1e-10, rtol=0)


def test_kda__chunk_stable_under_strong_decay_float32():
    # Channels decaying to e^-300 and below within one chunk: factoring exp(b_i - b_j) as
    # exp(b_i) exp(-b_j) would overflow float32; the relative form must stay finite and exact.
    q, k, v, g, beta, s0 = kda_inputs(
        1, 150, 2, 16, 16, torch.float32, seed=2, initial=True, decay_scale=20.0
    )
    assert g.sum(1).min() < -200
    o_ref, s_ref = recurrent_kda(q, k, v, g, beta, initial_state=s0)
    o, s = chunk_kda(q, k, v, g, beta, initial_state=s0, chunk_size=64)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


def test_kda__chunk_gradients_equal_recurrent():
    inputs = kda_inputs(1, 40, 2, 8, 4, torch.float64, seed=3, initial=True)
    grads = []
    for fn in (recurrent_kda, lambda *a, **kw: chunk_kda(*a, **kw, chunk_size=16)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        q, k, v, g, beta, s0 = leaves
        o, s = fn(q, k, v, g, beta, initial_state=s0)
        (o.square().sum() + s.sum()).backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-8)


def test_kda__split_sequence_carries_state():
    q, k, v, g, beta, _ = kda_inputs(1, 50, 2, 8, 8, torch.float64, seed=4)
    o_full, s_full = chunk_kda(q, k, v, g, beta, chunk_size=16)
    cut = [t[:, :21] for t in (q, k, v, g, beta)]
    rest = [t[:, 21:] for t in (q, k, v, g, beta)]
    o1, s1 = chunk_kda(*cut, chunk_size=16)
    o2, s2 = chunk_kda(*rest, initial_state=s1, chunk_size=16)
    torch.testing.assert_close(torch.cat((o1, o2), 1), o_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(s2, s_full, atol=1e-10, rtol=0)


def test_kda__bad_impl_raises():
    q, k, v, g, beta, _ = kda_inputs(1, 4, 1, 4, 4, torch.float32)
    with pytest.raises(ValueError, match=re.escape("impl must be one of")):
        kda(q, k, v, g, beta, impl="triton")


@pytest.mark.skipif(not (torch.cuda.is_available() and HAS_FLA_KDA), reason="needs CUDA and fla")
@pytest.mark.parametrize("initial", [False, True])
def test_kda__fla_equals_torch_chunk(initial):
    device = torch.device("cuda")
    q, k, v, g, beta, s0 = kda_inputs(2, 300, 4, 64, 64, torch.float32, seed=5, initial=initial)
    q, k, v, g, beta = (t.to(device) for t in (q, k, v, g, beta))
    s0 = None if s0 is None else s0.to(device)
    o_ref, s_ref = kda(q, k, v, g, beta, initial_state=s0, impl="chunk")
    half = [t.bfloat16() for t in (q, k, v)]
    o, s = kda(*half, g, beta.bfloat16(), initial_state=s0, impl="fla")
    # bf16 inputs against a float32 reference.
    torch.testing.assert_close(o.float(), o_ref, atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(s, s_ref, atol=5e-2, rtol=5e-2)


# ----------------------------------------------------------------------------- backbones

VARIANTS = [(name, {}) for name in NEW] + [
    ("mla", dict(rope=False)),
    ("mla", dict(mla_gate=True, latent_dim=3)),
    ("sliding_window", dict(window=1)),
    ("sliding_window", dict(window=30)),  # window longer than the sequence
    ("hybrid", dict(pattern="KLSG")),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in VARIANTS]


@pytest.mark.parametrize("name,overrides", VARIANTS, ids=IDS)
def test_backbone__cached_decoding_equals_full_forward(name, overrides):
    torch.manual_seed(0)
    net = build_backbone(name, causal=True, norm="pre", **(SMALL | overrides)).double().eval()
    x = torch.randn(2, 24, 16, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
        cache = net.init_cache()
        steps = torch.cat([net(x[:, t : t + 1], cache) for t in range(24)], dim=1)
        cache = net.init_cache()
        prefill = net(x[:, :13], cache)
        rest = [net(x[:, t : t + 1], cache) for t in range(13, 16)] + [net(x[:, 16:], cache)]
    assert cache.seen == 24
    torch.testing.assert_close(steps, y, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat([prefill, *rest], dim=1), y, atol=1e-10, rtol=0)


# window=1 is left out: a softmax over one key is constant, so q, k and QK-norm get no gradient.
GRAD_VARIANTS = [(v, i) for v, i in zip(VARIANTS, IDS) if v[1].get("window") != 1]


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize(
    "name,overrides", [v for v, _ in GRAD_VARIANTS], ids=[i for _, i in GRAD_VARIANTS]
)
def test_backbone__gradients_reach_every_parameter(name, overrides, causal):
    torch.manual_seed(0)
    net = build_backbone(name, causal=causal, norm="pre", **(SMALL | overrides))
    y = net(torch.randn(2, 24, 16))
    assert y.shape == (2, 24, 16)
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: no gradient for {missing}"


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("name", NEW)
def test_backbone__future_visible_only_when_bidirectional(name, causal):
    torch.manual_seed(0)
    net = build_backbone(name, causal=causal, **SMALL).double()
    x = torch.randn(1, 24, 16, dtype=torch.float64)
    x2 = x.clone()
    x2[:, 20] += 1.0
    with torch.no_grad():
        y, y2 = net(x), net(x2)
    changed = (y - y2).abs().amax(-1)[0] > 1e-9  # per position
    assert changed[20:].all()
    if causal:
        assert not changed[:20].any()
    else:
        # 4 layers of window 5 reach 4 * 4 = 16 positions back (sliding_window alone).
        assert changed[5:20].all()


# ----------------------------------------------------------------------------- sliding window


def reference_window_attention(layer: SlidingWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Full attention with an explicit window mask and softmax: what the blocked path computes."""
    B, T, D = x.shape
    q, k, v = layer.qkv(x).view(B, T, 3, layer.heads, layer.head_dim).unbind(2)
    q, k = layer.q_norm(q), layer.k_norm(k)
    q, k = layer.rotary(q), layer.rotary(k)
    q, k, v = (t.transpose(1, 2) for t in (q, k, v))  # (B, H, T, hd)
    pos = torch.arange(T)
    scores = (q @ k.transpose(-1, -2)) * layer.head_dim**-0.5
    scores = scores.masked_fill(~window_mask(pos, pos, layer.window, layer.causal), float("-inf"))
    y = scores.softmax(-1) @ v
    return layer.out(y.transpose(1, 2).reshape(B, T, D))


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("window,T", [(1, 9), (4, 30), (5, 10), (7, 33), (40, 33)])
def test_sliding_window__matches_masked_reference_and_sees_only_the_window(window, T, causal):
    torch.manual_seed(0)
    layer = SlidingWindowAttention(16, 2, causal, window).double()
    x = torch.randn(2, T, 16, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x), reference_window_attention(layer, x), atol=1e-10, rtol=0
        )
        j = T // 2
        x2 = x.clone()
        x2[:, j] += 1.0
        changed = (layer(x) - layer(x2)).abs().amax(-1)[0] > 1e-9  # per position
    i = torch.arange(T)
    seen = (i - j >= 0) & (i - j < window) if causal else (i - j).abs() < window
    assert torch.equal(changed, seen)


@pytest.mark.parametrize("cuts", [(7, 37), (1, 2, 30, 37), (4, 5, 37)])
def test_sliding_window__chunked_prefill_equals_full_forward(cuts):
    # Chunks longer than 2 * window run block-local with the cached keys in front.
    torch.manual_seed(0)
    layer = SlidingWindowAttention(16, 2, causal=True, window=5).double()
    x = torch.randn(2, 37, 16, dtype=torch.float64)
    cache = layer.empty_cache()
    with torch.no_grad():
        y = layer(x)
        parts = [layer(x[:, a:b], cache) for a, b in zip((0,) + cuts[:-1], cuts)]
    torch.testing.assert_close(torch.cat(parts, dim=1), y, atol=1e-10, rtol=0)


def test_sliding_window__cache_never_holds_more_than_window_keys():
    torch.manual_seed(0)
    window = 5
    net = build_backbone("sliding_window", 16, 2, 2, 40, causal=True, window=window, multiple_of=8)
    cache = net.init_cache()
    x = torch.randn(1, 40, 16)
    with torch.no_grad():
        net(x[:, :17], cache)  # a prefill longer than the window
        for t in range(17, 40):
            net(x[:, t : t + 1], cache)
            for layer in cache.layers:
                assert isinstance(layer, WindowCache)
                assert layer.k.shape[2] <= window and layer.v.shape[2] <= window
                assert layer.seen == t + 1
    assert cache.layers[0].k.shape[2] == window - 1


# ----------------------------------------------------------------------------- MLA


@pytest.mark.parametrize("rope", [True, False])
def test_mla__cache_holds_only_the_latent(rope):
    dim, heads, latent = 32, 4, 6
    net = build_backbone(
        "mla", dim, 2, heads, 20, causal=True, latent_dim=latent, rope=rope, multiple_of=8
    )
    mla = net.blocks[0].mixer
    assert isinstance(mla, MultiHeadLatentAttention)
    cache = net.init_cache()
    with torch.no_grad():
        net(torch.randn(3, 11, dim), cache)
        net(torch.randn(3, 1, dim), cache)
    per_token = 0
    for layer in cache.layers:
        assert isinstance(layer, LatentCache)
        assert layer.latent.shape == (3, 12, latent)
        if rope:
            assert layer.k_rope.shape == (3, 12, mla.rope_dim)
        else:
            assert layer.k_rope is None
        tensors = [t for t in (layer.latent, layer.k_rope) if t is not None]
        per_token = sum(t[0, 0].numel() for t in tensors)  # numbers per token and layer
    assert per_token == latent + (mla.rope_dim if rope else 0)
    assert per_token < 2 * heads * (dim // heads)  # a KV cache's numbers per token and layer


def test_mla__nope_has_no_rotary_and_ignores_position():
    # Without rotary and without a causal mask, MLA is permutation-equivariant.
    torch.manual_seed(0)
    layer = MultiHeadLatentAttention(16, 2, causal=False, latent_dim=4, rope=False).double()
    assert layer.rotary is None and layer.rope_dim == 0
    x = torch.randn(1, 9, 16, dtype=torch.float64)
    perm = torch.randperm(9)
    with torch.no_grad():
        torch.testing.assert_close(layer(x[:, perm]), layer(x)[:, perm], atol=1e-10, rtol=0)


# ----------------------------------------------------------------------------- recipes


@pytest.mark.parametrize(
    "name,kinds",
    [
        ("qwen3_next", ["GatedDeltaNet"] * 3 + ["GatedAttention"]),
        ("kimi_linear", ["KimiDeltaAttention"] * 3 + ["MultiHeadLatentAttention"]),
        ("gdn_h1", ["GatedDeltaNet", "SlidingWindowAttention"] * 2),
        ("kda", ["KimiDeltaAttention"] * 4),
        ("mla", ["MultiHeadLatentAttention"] * 4),
        ("sliding_window", ["SlidingWindowAttention"] * 4),
    ],
)
def test_recipes__layer_patterns(name, kinds):
    net = build_backbone(name, 16, 8, 2, 8, causal=True, multiple_of=8)
    assert [type(b.mixer).__name__ for b in net.blocks] == kinds * (8 // len(kinds))


def test_recipes__kimi_linear_mla_is_nope_unless_asked():
    net = build_backbone("kimi_linear", 16, 4, 2, 8, causal=True, multiple_of=8)
    assert net.blocks[3].mixer.rotary is None
    net = build_backbone("kimi_linear", 16, 4, 2, 8, causal=True, multiple_of=8, rope=True)
    assert net.blocks[3].mixer.rotary is not None
    net = build_backbone("mla", 16, 1, 2, 8, causal=True, multiple_of=8)
    assert net.blocks[0].mixer.rotary is not None


def test_recipes__free_pattern_and_kda_gate_shapes():
    net = build_backbone("hybrid", 16, 5, 2, 8, causal=False, pattern="KKKL", multiple_of=8)
    assert [type(b.mixer).__name__ for b in net.blocks] == ["KimiDeltaAttention"] * 3 + [
        "MultiHeadLatentAttention",
        "KimiDeltaAttention",
    ]
    kda_layer = net.blocks[0].mixer
    # one forget gate per key channel: dt_bias and the low-rank decay projection are H * dk wide
    assert kda_layer.dt_bias.shape == (16,) and kda_layer.f_proj[1].out_features == 16
    assert kda_layer.A_log.shape == (2,)


# ----------------------------------------------------------------------------- bad configs

BAD_CONFIGS = [
    (dict(name="kimi"), "unknown backbone 'kimi'; valid names: " + ", ".join(BACKBONES)),
    (
        dict(name="hybrid", pattern="GGGX"),
        "pattern must be a non-empty string over " + str(sorted(MIXERS)) + ", got 'GGGX'",
    ),
    (dict(name="kimi_linear", pattern="KKKL"), "pattern is for the hybrid backbone only"),
    (dict(name="sliding_window", window=0), "window must be a positive int, got window=0"),
    (dict(name="gdn_h1", window=-3), "window must be a positive int, got window=-3"),
    (dict(name="mla", latent_dim=0), "latent_dim must be a positive int, got latent_dim=0"),
    (dict(name="kda", impl="cuda"), "impl must be one of"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS)
def test_build_backbone__bad_configuration_raises(overrides, message):
    args = dict(name="mla", dim=16, depth=2, heads=2, seq_len=8, causal=True) | overrides
    with pytest.raises(ValueError, match=re.escape(message)):
        build_backbone(**args)


def test_hybrid__unknown_letter_lists_the_letters():
    with pytest.raises(ValueError) as info:
        build_backbone("hybrid", 16, 2, 2, 8, causal=True, pattern="GQ")
    for letter, meaning in MIXERS.items():
        assert f"{letter} ({meaning})" in str(info.value)


@pytest.mark.parametrize("name", ["kda", "mla", "sliding_window", "kimi_linear"])
def test_backbone__cache_in_bidirectional_mode_raises(name):
    net = build_backbone(name, 16, 2, 2, 8, causal=False, multiple_of=8)
    with pytest.raises(ValueError, match=re.escape("a decoding cache needs causal=True")):
        net.init_cache()
