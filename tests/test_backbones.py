"""Backbones: the gated delta rule's three forms agree, decoding with a cache equals the full
forward pass, gradients reach every parameter, causality holds, bad configurations fail clearly."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
import torch.nn.functional as F

from tracegym.agents.backbones import (
    BACKBONES,
    HAS_FLA,
    Cache,
    build_backbone,
    chunk_gated_delta_rule,
    gated_delta_rule,
    recurrent_gated_delta_rule,
)
from tracegym.agents.backbones.hybrid import layer_kinds
from tracegym.agents.backbones.layers import swiglu_hidden

CAUSAL = ["transformer", "gated_attention", "gated_deltanet", "hybrid"]
# (name, causal) pairs that exist: mlp_mixer is bidirectional only.
CONFIGS = [(n, c) for n in BACKBONES for c in (False, True) if not (n == "mlp_mixer" and c)]
SMALL = dict(dim=16, depth=4, heads=2, seq_len=24, multiple_of=8, chunk_size=16)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # These tensors are tiny: with several intra-op threads on a shared machine the time goes to
    # thread hand-offs (token-by-token decoding ran 10-30x slower), not arithmetic.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def delta_inputs(B, T, H, K, V, dtype, seed=0, initial=False):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k, v = rnd(B, T, H, K), F.normalize(rnd(B, T, H, K), dim=-1), rnd(B, T, H, V)
    g = F.logsigmoid(rnd(B, T, H) + 3)  # decays mostly near 1, some far below
    beta = torch.sigmoid(rnd(B, T, H))
    s0 = rnd(B, H, K, V) if initial else None
    return q, k, v, g, beta, s0


@pytest.mark.parametrize("T", [1, 15, 16, 37, 64, 100])
@pytest.mark.parametrize("chunk", [16, 64])
@pytest.mark.parametrize("initial", [False, True])
def test_delta_rule__chunk_equals_recurrent_float64(T, chunk, initial):
    q, k, v, g, beta, s0 = delta_inputs(2, T, 3, 8, 6, torch.float64, seed=T, initial=initial)
    o_ref, s_ref = recurrent_gated_delta_rule(q, k, v, g, beta, initial_state=s0)
    o, s = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=s0, chunk_size=chunk)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("T", [37, 130])
def test_delta_rule__chunk_equals_recurrent_float32(T):
    # float32 tolerance: 1e-4 absolute on outputs and states of order 1.
    q, k, v, g, beta, s0 = delta_inputs(2, T, 2, 16, 16, torch.float32, seed=1, initial=True)
    o_ref, s_ref = recurrent_gated_delta_rule(q, k, v, g, beta, initial_state=s0)
    o, s = chunk_gated_delta_rule(q, k, v, g, beta, initial_state=s0, chunk_size=64)
    assert o.dtype == torch.float32
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


def test_delta_rule__chunk_gradients_equal_recurrent():
    inputs = delta_inputs(1, 40, 2, 8, 4, torch.float64, seed=3, initial=True)
    grads = []
    for fn in (
        recurrent_gated_delta_rule,
        lambda *a, **kw: chunk_gated_delta_rule(*a, **kw, chunk_size=16),
    ):
        leaves = [t.clone().requires_grad_() for t in inputs]
        q, k, v, g, beta, s0 = leaves
        o, s = fn(q, k, v, g, beta, initial_state=s0)
        (o.square().sum() + s.sum()).backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-8)


def test_delta_rule__split_sequence_carries_state():
    q, k, v, g, beta, _ = delta_inputs(1, 50, 2, 8, 8, torch.float64, seed=4)
    o_full, s_full = chunk_gated_delta_rule(q, k, v, g, beta, chunk_size=16)
    o1, s1 = chunk_gated_delta_rule(
        q[:, :21], k[:, :21], v[:, :21], g[:, :21], beta[:, :21], chunk_size=16
    )
    o2, s2 = chunk_gated_delta_rule(
        q[:, 21:], k[:, 21:], v[:, 21:], g[:, 21:], beta[:, 21:], initial_state=s1, chunk_size=16
    )
    torch.testing.assert_close(torch.cat((o1, o2), 1), o_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(s2, s_full, atol=1e-10, rtol=0)


def test_delta_rule__ignores_autocast():
    q, k, v, g, beta, _ = delta_inputs(1, 33, 2, 8, 8, torch.float32, seed=6)
    o_ref, s_ref = chunk_gated_delta_rule(q, k, v, g, beta, chunk_size=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        o, s = gated_delta_rule(q, k, v, g, beta, chunk_size=16)
    assert o.dtype == torch.float32 and s.dtype == torch.float32
    torch.testing.assert_close(o, o_ref)
    torch.testing.assert_close(s, s_ref)


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone__runs_under_bf16_autocast(name):
    torch.manual_seed(0)
    net = build_backbone(name, causal=name != "mlp_mixer", **SMALL)
    x = torch.randn(2, 24, 16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = net(x)
    y.float().sum().backward()
    # bf16 matmuls: loose agreement with the float32 pass.
    torch.testing.assert_close(y.float(), net(x), atol=0.1, rtol=0.1)


@pytest.mark.skipif(not (torch.cuda.is_available() and HAS_FLA), reason="needs CUDA and fla")
@pytest.mark.parametrize("initial", [False, True])
def test_delta_rule__fla_equals_torch_chunk(initial):
    device = torch.device("cuda")
    q, k, v, g, beta, s0 = delta_inputs(2, 300, 4, 64, 64, torch.float32, seed=5, initial=initial)
    q, k, v, g, beta = (t.to(device) for t in (q, k, v, g, beta))
    s0 = None if s0 is None else s0.to(device)
    o_ref, s_ref = gated_delta_rule(q, k, v, g, beta, initial_state=s0, impl="chunk")
    half = [t.bfloat16() for t in (q, k, v)]
    o, s = gated_delta_rule(*half, g, beta.bfloat16(), initial_state=s0, impl="fla")
    # bf16 inputs against a float32 reference.
    torch.testing.assert_close(o.float(), o_ref, atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(s, s_ref, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("name", CAUSAL)
@pytest.mark.parametrize("norm", ["pre", "post"])
def test_backbone__cached_decoding_equals_full_forward(name, norm):
    torch.manual_seed(0)
    net = build_backbone(name, causal=True, norm=norm, **SMALL).double().eval()
    x = torch.randn(2, 24, 16, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
        cache = net.init_cache()
        steps = torch.cat([net(x[:, t : t + 1], cache) for t in range(24)], dim=1)
        cache = net.init_cache()
        prefill = net(x[:, :19], cache)
        rest = [net(x[:, t : t + 1], cache) for t in range(19, 22)] + [net(x[:, 22:], cache)]
    assert cache.seen == 24
    torch.testing.assert_close(steps, y, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat([prefill, *rest], dim=1), y, atol=1e-10, rtol=0)


@pytest.mark.parametrize("name,causal", CONFIGS)
def test_backbone__gradients_reach_every_parameter(name, causal):
    torch.manual_seed(0)
    net = build_backbone(name, causal=causal, norm="pre", **SMALL)
    y = net(torch.randn(2, 24, 16))
    assert y.shape == (2, 24, 16)
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: no gradient for {missing}"


@pytest.mark.parametrize("name,causal", CONFIGS)
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
        assert changed[:20].all()


def test_hybrid__pattern_repeats_to_depth():
    assert layer_kinds("GGGA", 6) == "GGGAGG"
    net = build_backbone("hybrid", 16, 8, 2, 8, causal=True, multiple_of=8)
    kinds = [type(b.mixer).__name__ for b in net.blocks]
    assert kinds == ["GatedDeltaNet"] * 3 + ["GatedAttention"] + ["GatedDeltaNet"] * 3 + [
        "GatedAttention"
    ]
    net = build_backbone("hybrid", 16, 3, 2, 8, causal=False, pattern="AG", multiple_of=8)
    assert [type(b.mixer).__name__ for b in net.blocks] == [
        "GatedAttention",
        "GatedDeltaNet",
        "GatedAttention",
    ]


def test_swiglu__trm_width_rounding():
    # TRM: hidden 512, expansion 4 -> round(512 * 4 * 2 / 3) = 1365 -> next multiple of 256.
    assert swiglu_hidden(512, 4.0, 256) == 1536
    assert swiglu_hidden(81, 4.0, 256) == 256


def test_backbone__plain_call_returns_tensor():
    net = build_backbone("mlp_mixer", 16, 2, 2, 9, causal=False, multiple_of=8)
    assert isinstance(net(torch.randn(3, 9, 16)), torch.Tensor)


BAD_CONFIGS = [
    (dict(name="foo"), "unknown backbone 'foo'; valid names: " + ", ".join(BACKBONES)),
    (dict(dim=30, heads=4), "dim must be divisible by heads, got dim=30, heads=4"),
    (dict(depth=0), "depth must be a positive int, got depth=0"),
    (dict(norm="middle"), "norm must be one of ('pre', 'post'), got norm='middle'"),
    (dict(name="transformer", pattern="GA"), "pattern is for the hybrid backbone only"),
    (dict(name="hybrid", pattern="GX"), "pattern must be a non-empty string over"),
    (
        dict(name="mlp_mixer", causal=True),
        "mlp_mixer is bidirectional only (causal=True is not supported)",
    ),
    (dict(name="gated_deltanet", impl="cuda"), "impl must be one of"),
    (dict(dim=12, heads=4), "rotary embeddings need an even head_dim, got head_dim=3"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS)
def test_build_backbone__bad_configuration_raises(overrides, message):
    args = dict(name="transformer", dim=16, depth=2, heads=2, seq_len=8, causal=False) | overrides
    with pytest.raises(ValueError, match=re.escape(message)):
        build_backbone(**args)


def test_build_backbone__unknown_keyword_is_a_type_error():
    with pytest.raises(TypeError):
        build_backbone("transformer", 16, 2, 2, 8, causal=True, expnasion=2.0)


@pytest.mark.parametrize("name", ["transformer", "gated_deltanet", "mlp_mixer"])
def test_backbone__cache_in_bidirectional_mode_raises(name):
    net = build_backbone(name, 16, 2, 2, 8, causal=False, multiple_of=8)
    message = "a decoding cache needs causal=True; this backbone is bidirectional"
    with pytest.raises(ValueError, match=re.escape(message)):
        net.init_cache()
    with pytest.raises(ValueError, match=re.escape(message)):
        net(torch.randn(1, 8, 16), Cache([None, None]))


def test_mlp_mixer__other_seq_len_raises():
    net = build_backbone("mlp_mixer", 16, 2, 2, 8, causal=False, multiple_of=8)
    with pytest.raises(
        ValueError, match=re.escape("mlp_mixer was built for seq_len=8, got an input of length 9")
    ):
        net(torch.randn(1, 9, 16))


def test_a_pattern_cut_below_its_length_warns_when_it_loses_a_layer_kind():
    from tracegym.agents.backbones import whole_depth

    cases = (("hybrid", 2), ("hybrid", 6), ("gdn_h1", 2))
    assert [whole_depth(name, depth) for name, depth in cases] == [4, 6, 2]
    assert whole_depth("hybrid", 2, pattern="GA") == 2
    with pytest.warns(UserWarning, match=r"hybrid at depth=2 has layers 'GG'.*\['A'\].*>= 4"):
        build_backbone("hybrid", 32, 2, 4, 16, True)
    with pytest.warns(UserWarning, match=r"kimi_linear at depth=3 has layers 'KKK'"):
        build_backbone("kimi_linear", 32, 3, 4, 16, True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_backbone("hybrid", 32, 2, 4, 16, True, pattern="GA")
        build_backbone("hybrid", 32, 4, 4, 16, True)
        build_backbone("gdn_h1", 32, 2, 4, 16, True)
