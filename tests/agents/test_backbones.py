"""Backbones, one property suite over every backbone in ``BACKBONES``.

- The delta-rule ops: the gated delta rule (one decay per head) and KDA (one per key channel) share
  one loop and one chunked form; for both decay shapes the chunked form equals the loop (values,
  gradients, split sequences), autocast is ignored, fla's kernels match on CUDA.
- ``BackboneConfig`` validates every field and ``build_backbone`` rejects unknown options by name;
  options reach the layers by name.
- Every backbone: decoding with a cache equals the full pass, gradients reach every parameter,
  causality holds, bf16 autocast runs, caches have the documented sizes, checkpoints keep their
  state_dict keys; windows, latent caches and recipe patterns hold.
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from tracegym.agents.backbones import (
    BACKBONE_DEFAULTS,
    BACKBONES,
    HAS_FLA,
    HAS_FLA_KDA,
    MIXERS,
    BackboneConfig,
    BackboneConfigError,
    Cache,
    UnknownOptionError,
    build_backbone,
    build_from_config,
    chunk_gated_delta_rule,
    chunk_kda,
    gated_delta_rule,
    kda,
    layer_kinds,
    min_depth_for_pattern,
    recurrent_gated_delta_rule,
    recurrent_kda,
)
from tracegym.agents.backbones.cache import DeltaCache, LatentCache, WindowCache
from tracegym.agents.backbones.delta_rule import fit_chunk
from tracegym.agents.backbones.gated_deltanet import GatedDeltaNet
from tracegym.agents.backbones.kda import KimiDeltaAttention
from tracegym.agents.backbones.layers import TRUNC_STD_FACTOR, Rotary, SwiGLU, swiglu_hidden
from tracegym.agents.backbones.mla import MultiHeadLatentAttention
from tracegym.agents.backbones.sliding_window import SlidingWindowAttention, window_mask
from tracegym.errors import TracegymError

# window 5 < seq_len 24: the sliding window is exercised (and its block-local path, T > 2 window);
# chunk 16 < 24: the delta-rule layers run more than one chunk.
SMALL = dict(dim=16, depth=4, heads=2, seq_len=24, multiple_of=8, chunk_size=16, window=5)
# (name, causal) pairs that exist: mlp_mixer is bidirectional only.
CONFIGS = [(n, c) for n in BACKBONES for c in (False, True) if not (n == "mlp_mixer" and c)]
CONFIG_IDS = [f"{n}-{'causal' if c else 'bidir'}" for n, c in CONFIGS]
# Every backbone by name with default options, plus option variants worth their own pass.
VARIANTS = [(name, {}) for name in BACKBONES] + [
    ("mla", dict(rope=False)),
    ("mla", dict(mla_gate=True, latent_dim=3)),
    ("sliding_window", dict(window=1)),
    ("sliding_window", dict(window=30)),  # window longer than the sequence
    ("hybrid", dict(pattern="KLSG")),
    ("gated_deltanet", dict(expand_v=2.0, conv_size=2)),
    ("kda", dict(expand_v=2.0, conv_size=2, chunk_size=24)),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in VARIANTS]
CAUSAL_VARIANTS = [(v, i) for v, i in zip(VARIANTS, IDS) if v[0] != "mlp_mixer"]


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------- delta-rule ops

# decay shape -> (loop, chunked, dispatching) forms: one log decay per head (gated delta rule,
# g of shape (B, T, H)) or per key channel (KDA, g of shape (B, T, H, K)).
DECAYS = ["head", "channel"]
OPS = {
    "head": (recurrent_gated_delta_rule, chunk_gated_delta_rule, gated_delta_rule),
    "channel": (recurrent_kda, chunk_kda, kda),
}


def delta_inputs(B, T, H, K, V, dtype, decay="head", seed=0, initial=False, decay_scale=1.0):
    gen = torch.Generator().manual_seed(seed)

    def rnd(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k, v = rnd(B, T, H, K), F.normalize(rnd(B, T, H, K), dim=-1), rnd(B, T, H, V)
    g_shape = (B, T, H, K) if decay == "channel" else (B, T, H)
    g = F.logsigmoid(rnd(*g_shape) + 3) * decay_scale  # decays mostly near 1, some far below
    beta = torch.sigmoid(rnd(B, T, H))
    s0 = rnd(B, H, K, V) if initial else None
    return q, k, v, g, beta, s0


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("T", [1, 15, 16, 37, 64, 100])
@pytest.mark.parametrize("chunk", [16, 24, 64])
@pytest.mark.parametrize("initial", [False, True])
def test_delta_rule__chunk_equals_recurrent_float64(decay, T, chunk, initial):
    recurrent, chunked, _ = OPS[decay]
    q, k, v, g, beta, s0 = delta_inputs(2, T, 3, 8, 6, torch.float64, decay, seed=T,
                                        initial=initial)
    o_ref, s_ref = recurrent(q, k, v, g, beta, initial_state=s0)
    o, s = chunked(q, k, v, g, beta, initial_state=s0, chunk_size=chunk)
    torch.testing.assert_close(o, o_ref, atol=1e-5, rtol=0)
    torch.testing.assert_close(s, s_ref, atol=1e-5, rtol=0)


@pytest.mark.parametrize("decay", DECAYS)
@pytest.mark.parametrize("T", [37, 130])
def test_delta_rule__chunk_equals_recurrent_float32(decay, T):
    # float32 tolerance: 1e-4 absolute on outputs and states of order 1.
    recurrent, chunked, _ = OPS[decay]
    q, k, v, g, beta, s0 = delta_inputs(2, T, 2, 16, 16, torch.float32, decay, seed=1,
                                        initial=True)
    o_ref, s_ref = recurrent(q, k, v, g, beta, initial_state=s0)
    o, s = chunked(q, k, v, g, beta, initial_state=s0, chunk_size=64)
    assert o.dtype == torch.float32
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__chunk_stable_under_strong_decay_float32(decay):
    # Decays to e^-300 and below within one chunk: factoring exp(b_i - b_j) as exp(b_i) exp(-b_j)
    # would overflow float32; the relative form must stay finite and exact.
    recurrent, chunked, _ = OPS[decay]
    q, k, v, g, beta, s0 = delta_inputs(1, 150, 2, 16, 16, torch.float32, decay, seed=2,
                                        initial=True, decay_scale=20.0)
    assert g.sum(1).min() < -200
    o_ref, s_ref = recurrent(q, k, v, g, beta, initial_state=s0)
    o, s = chunked(q, k, v, g, beta, initial_state=s0, chunk_size=64)
    assert torch.isfinite(o).all() and torch.isfinite(s).all()
    torch.testing.assert_close(o, o_ref, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(s, s_ref, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__chunk_gradients_equal_recurrent(decay):
    recurrent, chunked, _ = OPS[decay]
    inputs = delta_inputs(1, 40, 2, 8, 4, torch.float64, decay, seed=3, initial=True)
    grads = []
    for fn in (recurrent, lambda *a, **kw: chunked(*a, **kw, chunk_size=16)):
        leaves = [t.clone().requires_grad_() for t in inputs]
        q, k, v, g, beta, s0 = leaves
        o, s = fn(q, k, v, g, beta, initial_state=s0)
        (o.square().sum() + s.sum()).backward()
        grads.append([t.grad for t in leaves])
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, atol=1e-8, rtol=1e-8)


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__split_sequence_carries_state(decay):
    _, chunked, _ = OPS[decay]
    q, k, v, g, beta, _ = delta_inputs(1, 50, 2, 8, 8, torch.float64, decay, seed=4)
    o_full, s_full = chunked(q, k, v, g, beta, chunk_size=16)
    cut = [t[:, :21] for t in (q, k, v, g, beta)]
    rest = [t[:, 21:] for t in (q, k, v, g, beta)]
    o1, s1 = chunked(*cut, chunk_size=16)
    o2, s2 = chunked(*rest, initial_state=s1, chunk_size=16)
    torch.testing.assert_close(torch.cat((o1, o2), 1), o_full, atol=1e-10, rtol=0)
    torch.testing.assert_close(s2, s_full, atol=1e-10, rtol=0)


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__ignores_autocast(decay):
    _, chunked, op = OPS[decay]
    q, k, v, g, beta, _ = delta_inputs(1, 33, 2, 8, 8, torch.float32, decay, seed=6)
    o_ref, s_ref = chunked(q, k, v, g, beta, chunk_size=16)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        o, s = op(q, k, v, g, beta, chunk_size=16)
    assert o.dtype == torch.float32 and s.dtype == torch.float32
    torch.testing.assert_close(o, o_ref)
    torch.testing.assert_close(s, s_ref)


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__bad_impl_raises(decay):
    q, k, v, g, beta, _ = delta_inputs(1, 4, 1, 4, 4, torch.float32, decay)
    with pytest.raises(ValueError, match=re.escape("impl must be one of")):
        OPS[decay][2](q, k, v, g, beta, impl="triton")


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__decay_of_the_other_shape_raises(decay):
    # The shared forms broadcast either shape; each op checks it was given its own.
    other = "channel" if decay == "head" else "head"
    q, k, v, _, beta, _ = delta_inputs(1, 4, 2, 4, 4, torch.float32, decay)
    g = delta_inputs(1, 4, 2, 4, 4, torch.float32, other)[3]
    want = (1, 4, 2, 4) if decay == "channel" else (1, 4, 2)
    for form in OPS[decay][:2]:
        with pytest.raises(ValueError, match=re.escape(f"g must have shape {want}")):
            form(q, k, v, g, beta)


def test_kda__equal_channels_is_the_gated_delta_rule():
    q, k, v, g, beta, s0 = delta_inputs(2, 40, 3, 8, 6, torch.float64, "channel", seed=1,
                                        initial=True)
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


@pytest.mark.parametrize("decay", [
    pytest.param("head", marks=pytest.mark.skipif(
        not (torch.cuda.is_available() and HAS_FLA), reason="needs CUDA and fla")),
    pytest.param("channel", marks=pytest.mark.skipif(
        not (torch.cuda.is_available() and HAS_FLA_KDA), reason="needs CUDA and fla's KDA")),
])
@pytest.mark.parametrize("initial", [False, True])
def test_delta_rule__fla_equals_torch_chunk(decay, initial):
    device = torch.device("cuda")
    op = OPS[decay][2]
    q, k, v, g, beta, s0 = delta_inputs(2, 300, 4, 64, 64, torch.float32, decay, seed=5,
                                        initial=initial)
    q, k, v, g, beta = (t.to(device) for t in (q, k, v, g, beta))
    s0 = None if s0 is None else s0.to(device)
    o_ref, s_ref = op(q, k, v, g, beta, initial_state=s0, impl="chunk")
    half = [t.bfloat16() for t in (q, k, v)]
    o, s = op(*half, g, beta.bfloat16(), initial_state=s0, impl="fla")
    # bf16 inputs against a float32 reference.
    torch.testing.assert_close(o.float(), o_ref, atol=5e-2, rtol=5e-2)
    torch.testing.assert_close(s, s_ref, atol=5e-2, rtol=5e-2)


# ----------------------------------------------------------------------------- BackboneConfig

BASE = dict(name="transformer", dim=16, depth=2, heads=2, seq_len=8, causal=False)
BAD_CONFIGS = [
    (dict(name="foo"), "unknown backbone 'foo'; valid names: " + ", ".join(BACKBONES)),
    (dict(name=None), "unknown backbone None"),
    (dict(dim=30, heads=4), "dim must be divisible by heads, got dim=30, heads=4"),
    (dict(depth=0), "depth must be >= 1, got 0"),
    (dict(seq_len=-1), "seq_len must be >= 1, got -1"),
    (dict(dim=True), "dim must be an int, got True"),
    (dict(heads=2.0), "heads must be an int, got 2.0"),
    (dict(causal="yes"), "causal must be True or False, got causal='yes'"),
    (dict(norm="middle"), "norm must be one of ('pre', 'post'), got norm='middle'"),
    (dict(expansion=0), "expansion must be a number > 0, got expansion=0"),
    (dict(multiple_of=0), "multiple_of must be >= 1, got 0"),
    (dict(qk_norm=1), "qk_norm must be True or False, got qk_norm=1"),
    (dict(rope_base=-1.0), "rope_base must be a number > 0, got rope_base=-1.0"),
    (dict(rope="on"), "rope must be True, False or None, got rope='on'"),
    (dict(mla_gate=None), "mla_gate must be True or False, got mla_gate=None"),
    (dict(name="transformer", pattern="GA"), "pattern is for the hybrid backbone only"),
    (dict(name="kimi_linear", pattern="KKKL"), "pattern is for the hybrid backbone only"),
    (dict(name="hybrid", pattern="GX"), "pattern must be a non-empty string over"),
    (dict(name="hybrid", pattern=""), "pattern must be a non-empty string over"),
    (
        dict(name="hybrid", pattern="GGGX"),
        "pattern must be a non-empty string over " + str(sorted(MIXERS)) + ", got 'GGGX'",
    ),
    (
        dict(name="mlp_mixer", causal=True),
        "mlp_mixer is bidirectional only (causal=True is not supported)",
    ),
    (
        dict(name="hybrid", pattern="GM", causal=True),
        "mlp_mixer is bidirectional only (causal=True is not supported)",
    ),
    (dict(name="gated_deltanet", impl="cuda"), "impl must be one of"),
    (dict(name="kda", impl="cuda"), "impl must be one of"),
    (dict(name="kda", conv_size=0), "conv_size must be >= 1, got 0"),
    (dict(name="gated_deltanet", chunk_size=0), "chunk_size must be >= 1, got 0"),
    (dict(name="gated_deltanet", chunk_size=16.0), "chunk_size must be an int, got 16.0"),
    (dict(name="gated_deltanet", expand_v=0), "expand_v must be a number > 0, got expand_v=0"),
    (dict(name="kda", expand_v=0.01), "expand_v=0.01 gives a value width of 0 (head_dim=8)"),
    (dict(dim=12, heads=4), "rotary embeddings need an even head_dim, got head_dim=3"),
    (dict(name="sliding_window", window=0), "window must be >= 1, got 0"),
    (dict(name="gdn_h1", window=-3), "window must be >= 1, got -3"),
    (dict(name="mla", latent_dim=0), "latent_dim must be >= 1, got 0"),
    (dict(name="mla", latent_dim=2.5), "latent_dim must be an int or None, got 2.5"),
]


@pytest.mark.parametrize("overrides,message", BAD_CONFIGS)
def test_build_backbone__bad_configuration_raises(overrides, message):
    with pytest.raises(BackboneConfigError, match=re.escape(message)) as info:
        build_backbone(**(BASE | overrides))
    assert isinstance(info.value, TracegymError) and isinstance(info.value, ValueError)
    with pytest.raises(BackboneConfigError, match=re.escape(message)):
        BackboneConfig(**(BASE | overrides))


def test_build_backbone__odd_head_dim_is_fine_without_rotary():
    build_backbone("transformer", 12, 1, 4, 8, causal=False, rope=False, multiple_of=8)
    build_backbone("gated_deltanet", 12, 1, 4, 8, causal=False, multiple_of=8)  # no rotary


def test_build_backbone__unknown_option_is_named():
    with pytest.raises(UnknownOptionError) as info:
        build_backbone("transformer", 16, 2, 2, 8, causal=True, expnasion=2.0, colour=1)
    message = str(info.value)
    assert "unknown backbone option(s) ['colour', 'expnasion']" in message
    assert "'expnasion': did you mean 'expansion'?" in message
    assert "valid options: " + ", ".join(BACKBONE_DEFAULTS) in message
    # A bad-input error for the CLI, and the TypeError any unknown keyword raises.
    assert isinstance(info.value, TracegymError) and isinstance(info.value, TypeError)


def test_backbone_config__is_frozen_and_resolves_its_defaults():
    cfg = BackboneConfig("kimi_linear", 16, 6, 2, 8, causal=True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.dim = 32
    assert cfg.layers == "KKKLKK" and cfg.rotary is False
    assert BackboneConfig("kimi_linear", 16, 4, 2, 8, True, rope=True).rotary is True
    assert BackboneConfig("hybrid", 16, 3, 2, 8, False).layers == "GGG"
    assert BackboneConfig("hybrid", 16, 3, 2, 8, False, pattern="AG").layers == "AGA"


def test_backbone_defaults__are_the_config_options_and_the_signature():
    options = {f.name: f.default for f in dataclasses.fields(BackboneConfig) if f.kw_only}
    assert BACKBONE_DEFAULTS == options
    assert list(BACKBONE_DEFAULTS)[:3] == ["norm", "expansion", "multiple_of"]
    # build_backbone's signature is read from the dataclass: help() and inspect show every
    # option with its default (callers derived their option lists from it this way).
    signature = inspect.signature(build_backbone)
    keyword_only = {n: p.default for n, p in signature.parameters.items()
                    if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keyword_only == BACKBONE_DEFAULTS
    assert list(signature.parameters)[:6] == ["name", "dim", "depth", "heads", "seq_len", "causal"]


def test_build_backbone__options_reach_the_layers_by_name():
    # conv_size and chunk_size are both ints: passed by position they could swap unnoticed.
    options = dict(conv_size=3, chunk_size=16, expand_v=2.0, impl="chunk", multiple_of=8)
    net = build_backbone("hybrid", 16, 4, 2, 8, causal=True, pattern="GKLS", latent_dim=5,
                         mla_gate=True, window=7, rope_base=500.0, **options)
    g, k, mla, sw = (b.mixer for b in net.blocks)
    for layer in (g, k):
        assert (layer.conv_size, layer.conv.shape[-1], layer.chunk_size) == (3, 3, 16)
        assert (layer.dv, layer.impl) == (16, "chunk")
    assert mla.latent_dim == 5 and mla.g_proj is not None
    assert sw.window == 7
    torch.testing.assert_close(sw.rotary.inv_freq[1], torch.tensor(500.0 ** (-2 / 8)))
    assert net.config == BackboneConfig("hybrid", 16, 4, 2, 8, True, pattern="GKLS", latent_dim=5,
                                        mla_gate=True, window=7, rope_base=500.0, **options)


@pytest.mark.parametrize("layer", [GatedDeltaNet, KimiDeltaAttention])
def test_delta_layers__options_are_keyword_only(layer):
    with pytest.raises(TypeError):
        layer(16, 2, True, 1.0, 4, 64)  # expand_v, conv_size, chunk_size by position
    assert layer(16, 2, True, conv_size=3, chunk_size=8).conv_size == 3


def test_build_from_config__equals_build_backbone():
    cfg = BackboneConfig("qwen3_next", 16, 4, 2, 8, causal=True, multiple_of=8)
    torch.manual_seed(0)
    a = build_from_config(cfg)
    torch.manual_seed(0)
    b = build_backbone("qwen3_next", 16, 4, 2, 8, causal=True, multiple_of=8)
    assert a.config == b.config == cfg
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[n], sb[n]) for n in sa)


# ----------------------------------------------------------------------------- checkpoints

# Each mixer's state_dict keys and shapes at dim 16, heads 2 (seq_len 8), as written by the
# checkpoints of earlier versions: a refactor must keep them so those checkpoints load.
DELTA_KEYS = {"A_log": (2,), "b_proj.weight": (2, 16), "conv": (48, 1, 4),
              "in_proj.weight": (48, 16), "o_norm.weight": (8,), "out.weight": (16, 16)}
MIXER_STATE = {
    "T": {"qkv.weight": (48, 16), "out.weight": (16, 16)},
    "A": {"qkv.weight": (48, 16), "g_proj.weight": (16, 16), "q_norm.weight": (8,),
          "k_norm.weight": (8,), "out.weight": (16, 16)},
    "G": DELTA_KEYS | {"a_proj.weight": (2, 16), "dt_bias": (2,), "g_proj.weight": (16, 16)},
    "K": DELTA_KEYS | {"dt_bias": (16,), "f_proj.0.weight": (8, 16), "f_proj.1.weight": (16, 8),
                       "g_proj.0.weight": (8, 16), "g_proj.1.weight": (16, 8),
                       "g_proj.1.bias": (16,)},
    "L": {"q_proj.weight": (24, 16), "kv_down.weight": (12, 16), "kv_norm.weight": (8,),
          "kv_up.weight": (32, 8), "out.weight": (16, 16)},
    "S": {"qkv.weight": (48, 16), "q_norm.weight": (8,), "k_norm.weight": (8,),
          "out.weight": (16, 16)},
    "M": {"mlp.gate_up.weight": (48, 8), "mlp.down.weight": (8, 24)},
}
BLOCK_STATE = {"norm1.weight": (16,), "norm2.weight": (16,), "mlp.gate_up.weight": (96, 16),
               "mlp.down.weight": (16, 48)}


@pytest.mark.parametrize("name,causal", CONFIGS, ids=CONFIG_IDS)
def test_backbone__state_dict_keys_and_shapes_are_stable(name, causal):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recipes cut to depth 1
        net = build_backbone(name, 16, 1, 2, 8, causal, multiple_of=8)
    letter = net.config.layers
    want = dict(MIXER_STATE[letter])
    if letter in "GK" and not causal:
        want["conv_rev"] = (48, 1, 4)  # the reversed scan's own convolution
    want = {f"blocks.0.mixer.{k}": v for k, v in want.items()}
    want |= {f"blocks.0.{k}": v for k, v in BLOCK_STATE.items()}
    if letter == "M":
        # Since issue 18 the post-norm after the token MLP normalises over the sequence (as TRM):
        # one gain per position. Same key; a checkpoint with the old (D,) gain fails loudly.
        want["blocks.0.norm1.weight"] = (8,)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == want


# ----------------------------------------------------------------------------- every backbone


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


@pytest.mark.parametrize("norm", ["pre", "post"])
@pytest.mark.parametrize(
    "name,overrides", [v for v, _ in CAUSAL_VARIANTS], ids=[i for _, i in CAUSAL_VARIANTS]
)
def test_backbone__cached_decoding_equals_full_forward(name, overrides, norm):
    torch.manual_seed(0)
    net = build_backbone(name, causal=True, norm=norm, **(SMALL | overrides)).double().eval()
    x = torch.randn(2, 24, 16, dtype=torch.float64)
    with torch.no_grad():
        y = net(x)
        cache = net.init_cache()
        steps = torch.cat([net(x[:, t : t + 1], cache) for t in range(24)], dim=1)
        # A prefill past one chunk (16) and past 2 windows (block-local), steps, then a piece.
        cache = net.init_cache()
        prefill = net(x[:, :19], cache)
        rest = [net(x[:, t : t + 1], cache) for t in range(19, 22)] + [net(x[:, 22:], cache)]
    assert cache.seen == 24
    torch.testing.assert_close(steps, y, atol=1e-10, rtol=0)
    torch.testing.assert_close(torch.cat([prefill, *rest], dim=1), y, atol=1e-10, rtol=0)


# window=1 is left out: a softmax over one key is constant, so q, k and QK-norm get no gradient.
GRAD_VARIANTS = [
    ((name, kw, causal), f"{i}-{'causal' if causal else 'bidir'}")
    for (name, kw), i in zip(VARIANTS, IDS)
    for causal in (True, False)
    if kw.get("window") != 1 and not (name == "mlp_mixer" and causal)
]


@pytest.mark.parametrize(
    "name,overrides,causal", [v for v, _ in GRAD_VARIANTS], ids=[i for _, i in GRAD_VARIANTS]
)
def test_backbone__gradients_reach_every_parameter(name, overrides, causal):
    torch.manual_seed(0)
    net = build_backbone(name, causal=causal, norm="pre", **(SMALL | overrides))
    y = net(torch.randn(2, 24, 16))
    assert isinstance(y, torch.Tensor) and y.shape == (2, 24, 16)
    (y * torch.randn_like(y)).sum().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{name}: no gradient for {missing}"


@pytest.mark.parametrize("name,causal", CONFIGS, ids=CONFIG_IDS)
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
    elif name == "sliding_window":
        # 4 layers of window 5 reach 4 * 4 = 16 positions back, and no further.
        assert changed[4:20].all() and not changed[:4].any()
    else:
        assert changed[:20].all()


@pytest.mark.parametrize("name", list(BACKBONES))
def test_backbone__cache_in_bidirectional_mode_raises(name):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recipes cut to depth 2
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


def test_swiglu__trm_width_rounding():
    # TRM: hidden 512, expansion 4 -> round(512 * 4 * 2 / 3) = 1365 -> next multiple of 256.
    assert swiglu_hidden(512, 4.0, 256) == 1536
    assert swiglu_hidden(81, 4.0, 256) == 256


# ----------------------------------------------------------------------------- delta-rule layers


class _CountClones(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.clones = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.clones += func is torch.Tensor.clone
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("layer", [GatedDeltaNet, KimiDeltaAttention])
def test_delta_layers__cache_keeps_a_compact_conv_tail_copied_once(layer):
    torch.manual_seed(0)
    mixer = layer(16, 2, causal=True, conv_size=4, chunk_size=8)
    cache = mixer.empty_cache()
    assert isinstance(cache, DeltaCache)
    with torch.no_grad(), _CountClones() as counter:
        mixer(torch.randn(2, 30, 16), cache)
    # Its own storage, not a view of the (B, C, 3 + 30) input; one copy per call (KDA once
    # cloned it twice).
    assert cache.conv.shape == (2, 48, 3) and counter.clones == 1
    assert cache.conv.untyped_storage().nbytes() == cache.conv.numel() * cache.conv.element_size()
    assert cache.state.shape == (2, 2, 8, 8) and cache.state.dtype == torch.float32
    assert cache.length == 30


def reference_delta_mixer(layer, x: torch.Tensor) -> torch.Tensor:
    """The delta-rule layer as first written, kept as the reference of its faster forward:
    ``F.conv1d`` short convolutions, ``F.normalize`` per head, and the reversed sequence as a
    second scan of its own (the fast path stacks both into one), every scan the loop over time."""
    B, T, _ = x.shape
    K = layer.conv_size
    u = layer.in_proj(x)
    gate_dtype = torch.promote_types(x.dtype, torch.float32)
    g = layer._log_decay(x, gate_dtype)
    beta = torch.sigmoid(layer.b_proj(x).to(gate_dtype))
    recurrent = recurrent_kda if layer.per_channel else recurrent_gated_delta_rule

    def conv(u, weight):  # (B, T, C)
        full = F.pad(u.transpose(1, 2), (K - 1, 0))
        return F.silu(F.conv1d(full, weight, groups=u.shape[-1])).transpose(1, 2)

    def heads(u):
        hk = layer.heads * layer.dk
        q, k, v = u.split((hk, hk, layer.heads * layer.dv), dim=-1)
        q = F.normalize(q.view(B, T, layer.heads, layer.dk), dim=-1, eps=1e-6)
        k = F.normalize(k.view(B, T, layer.heads, layer.dk), dim=-1, eps=1e-6)
        return q, k, v.view(B, T, layer.heads, layer.dv)

    o, _ = recurrent(*heads(conv(u, layer.conv)), g, beta, scale=layer.dk**-0.5)
    if not layer.causal:
        o_rev, _ = recurrent(*heads(conv(u.flip(1), layer.conv_rev)), g.flip(1), beta.flip(1),
                             scale=layer.dk**-0.5)
        o = 0.5 * (o + o_rev.flip(1))
    o = layer.o_norm(o) * layer._output_gate(x)
    return layer.out(o.reshape(B, T, layer.heads * layer.dv))


@pytest.mark.parametrize("layer", [GatedDeltaNet, KimiDeltaAttention])
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("T,chunk", [(16, 64), (37, 16)])
def test_delta_layers__equal_the_reference_forward_and_gradients(layer, causal, T, chunk):
    # float64: the fast forward (shifted multiply-adds, one stacked scan in chunks) and the
    # reference (conv1d, two loop-over-time scans) differ only by rounding.
    torch.manual_seed(0)
    mixer = layer(16, 2, causal, conv_size=4, chunk_size=chunk, impl="chunk").double()
    x = torch.randn(3, T, 16, dtype=torch.float64, requires_grad=True)
    out = mixer(x)
    grads = torch.autograd.grad(out.square().sum(), [x, *mixer.parameters()])
    ref = reference_delta_mixer(mixer, x)
    ref_grads = torch.autograd.grad(ref.square().sum(), [x, *mixer.parameters()])
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=1e-10)
    for got, want in zip(grads, ref_grads):
        torch.testing.assert_close(got, want, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("layer", [GatedDeltaNet, KimiDeltaAttention])
def test_delta_layers__bidirectional_runs_one_scan_over_both_directions(layer):
    mixer = layer(16, 2, causal=False, chunk_size=16, impl="chunk")
    calls = []
    rule = mixer.rule

    def counting(q, *args, **kwargs):
        calls.append(q.shape[0])
        return rule(q, *args, **kwargs)

    mixer.rule = counting
    mixer(torch.randn(3, 20, 16))
    assert calls == [6]  # one call on 2B sequences, not two on B


@pytest.mark.parametrize("T,chunk_size,fitted", [
    (16, 64, 16), (36, 64, 48), (81, 64, 48), (130, 64, 48), (64, 64, 64), (65, 64, 48),
    (16, 4, 4), (20, 8, 8), (5, 64, 16), (1, 64, 16), (200, 100, 100),
])
def test_fit_chunk__fewest_chunks_each_as_short_as_they_allow(T, chunk_size, fitted):
    assert fit_chunk(T, chunk_size) == fitted
    chunks = -(-T // fitted)
    assert chunks == -(-T // chunk_size) and fitted <= chunk_size


class _SolveShapes(TorchFunctionMode):
    def __init__(self):
        super().__init__()
        self.shapes = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func is torch.linalg.solve_triangular:
            self.shapes.append(tuple(args[0].shape))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__a_short_sequence_runs_one_short_chunk(decay):
    # A 16-token grid (4x4 Sudoku) with the default chunk_size 64 solves 16x16 systems, not
    # 64x64 ones padded with 48 empty steps (16x the Gram work, 64x the solve).
    _, chunked, _ = OPS[decay]
    q, k, v, g, beta, _ = delta_inputs(2, 16, 3, 8, 6, torch.float64, decay)
    with _SolveShapes() as seen:
        chunked(q, k, v, g, beta, chunk_size=64)
    assert seen.shapes == [(6, 1, 16, 16)]


@pytest.mark.parametrize("decay", DECAYS)
def test_delta_rule__one_chunk_from_no_state_equals_the_general_path(decay):
    # One chunk with no initial state skips W and the loop over chunks; a zero initial state
    # takes the general path with the same result.
    _, chunked, _ = OPS[decay]
    q, k, v, g, beta, _ = delta_inputs(2, 16, 3, 8, 6, torch.float64, decay)
    o, s = chunked(q, k, v, g, beta, chunk_size=64)
    o_ref, s_ref = chunked(q, k, v, g, beta, initial_state=torch.zeros(2, 3, 8, 6,
                                                                        dtype=torch.float64),
                           chunk_size=64)
    torch.testing.assert_close(o, o_ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(s, s_ref, atol=1e-12, rtol=0)


def test_swiglu__equals_the_fused_product_cut_in_two():
    torch.manual_seed(0)
    mlp = SwiGLU(16, 4.0, 8).double()
    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    gate, up = mlp.gate_up(x).chunk(2, dim=-1)
    ref = mlp.down(F.silu(gate) * up)
    out = mlp(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=1e-12)
    for got, want in zip(torch.autograd.grad(out.sum(), [x, *mlp.parameters()]),
                         torch.autograd.grad(ref.sum(), [x, *mlp.parameters()])):
        torch.testing.assert_close(got, want, atol=1e-12, rtol=1e-12)


def test_rotary__q_and_k_stacked_equal_each_alone():
    rotary = Rotary(8)
    q, k = torch.randn(2, 7, 3, 8), torch.randn(2, 7, 3, 8)
    both = rotary(torch.stack((q, k), dim=2), 5)
    assert torch.equal(both[:, :, 0], rotary(q, 5)) and torch.equal(both[:, :, 1], rotary(k, 5))


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


# ----------------------------------------------------------------------------- patterns, recipes


def test_hybrid__pattern_repeats_to_depth():
    assert layer_kinds("GGGA", 6) == "GGGAGG"
    net = build_backbone("hybrid", 16, 8, 2, 8, causal=True, multiple_of=8)
    kinds = [type(b.mixer).__name__ for b in net.blocks]
    assert kinds == (["GatedDeltaNet"] * 3 + ["GatedAttention"]) * 2
    net = build_backbone("hybrid", 16, 3, 2, 8, causal=False, pattern="AG", multiple_of=8)
    assert [type(b.mixer).__name__ for b in net.blocks] == [
        "GatedAttention",
        "GatedDeltaNet",
        "GatedAttention",
    ]


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
    assert not hasattr(kda_layer, "a_proj")


def test_hybrid__unknown_letter_lists_the_letters():
    with pytest.raises(BackboneConfigError) as info:
        build_backbone("hybrid", 16, 2, 2, 8, causal=True, pattern="GQ")
    for letter, meaning in MIXERS.items():
        assert f"{letter} ({meaning})" in str(info.value)


def test_a_pattern_cut_below_its_length_warns_when_it_loses_a_layer_kind():
    cases = (("hybrid", 2), ("hybrid", 6), ("gdn_h1", 2))
    assert [min_depth_for_pattern(name, depth) for name, depth in cases] == [4, 6, 2]
    assert min_depth_for_pattern("hybrid", 2, pattern="GA") == 2
    with pytest.warns(UserWarning, match=r"hybrid at depth=2 has layers 'GG'.*\['A'\].*>= 4") as w:
        build_backbone("hybrid", 32, 2, 4, 16, True)
    assert w[0].filename == __file__  # points at the caller
    with pytest.warns(UserWarning, match=r"kimi_linear at depth=3 has layers 'KKK'") as w:
        build_from_config(BackboneConfig("kimi_linear", 32, 3, 4, 16, True))
    assert w[0].filename == __file__
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_backbone("hybrid", 32, 2, 4, 16, True, pattern="GA")
        build_backbone("hybrid", 32, 4, 4, 16, True)
        build_backbone("gdn_h1", 32, 2, 4, 16, True)


# ----------------------------------------------------------------------------- TRM's norm and init


def _norm_gains(net):
    return sorted(k for k in net.state_dict() if re.search(r"norm[12]\.weight|final_norm", k))


@pytest.mark.parametrize("norm", ["post", "pre"])
@pytest.mark.parametrize("name", ["transformer", "mlp_mixer", "hybrid"])
def test_norm_gain__off_leaves_no_gain_parameter(name, norm):
    kw = dict(name=name, dim=16, depth=4, heads=2, seq_len=8, causal=False, multiple_of=8,
              norm=norm)
    torch.manual_seed(0)
    with_gain = build_backbone(**kw)
    torch.manual_seed(0)
    without = build_backbone(**kw, norm_gain=False)
    assert _norm_gains(with_gain)  # the default keeps today's gains
    assert _norm_gains(without) == []
    # only the block norms lose theirs: the mixers' keys are the same
    assert set(without.state_dict()) == set(with_gain.state_dict()) - set(_norm_gains(with_gain))
    x = torch.randn(2, 8, 16)
    assert torch.allclose(with_gain(x), without(x))  # gains start at one: same function at init


def test_defaults__norm_gain_and_torch_init_are_todays_backbone():
    assert BACKBONE_DEFAULTS["norm_gain"] is True and BACKBONE_DEFAULTS["init"] == "torch"
    torch.manual_seed(0)
    net = build_backbone("transformer", 256, 1, 4, 8, False)
    # PyTorch's default nn.Linear init: uniform with std 1/sqrt(3 fan_in)
    w = net.blocks[0].mixer.qkv.weight
    assert w.std().item() == pytest.approx(1 / (3 * 256) ** 0.5, rel=0.02)
    assert w.abs().max().item() <= 1 / 256**0.5


def test_lecun_normal__std_and_truncation_are_trms():
    # TRM's trunc_normal_init_ (models/common.py) written out: the std correction for a normal cut
    # at +-2 of its own std.
    lower, upper = -2.0, 2.0
    z = (math.erf(upper / math.sqrt(2)) - math.erf(lower / math.sqrt(2))) / 2
    c = (2 * math.pi) ** -0.5
    pdf_u, pdf_l = c * math.exp(-0.5 * lower**2), c * math.exp(-0.5 * upper**2)
    factor = 1 / math.sqrt(1 - (upper * pdf_u - lower * pdf_l) / z - ((pdf_u - pdf_l) / z) ** 2)
    assert TRUNC_STD_FACTOR == pytest.approx(factor, rel=1e-12)
    assert factor == pytest.approx(1.1368, abs=1e-4)

    torch.manual_seed(0)
    net = build_backbone("transformer", 1024, 1, 8, 8, False, init="lecun_normal")
    for w in (net.blocks[0].mixer.qkv.weight, net.blocks[0].mlp.down.weight):
        fan_in = w.shape[1]
        std = 1 / math.sqrt(fan_in)  # the std of the truncated values; the normal's is factor x
        bound = 2 * factor * std
        assert w.std().item() == pytest.approx(std, rel=0.02)
        assert w.abs().max().item() <= bound * (1 + 1e-6)
        # the tail reaches the corrected bound, not 2 std (what no correction would give)
        assert w.abs().max().item() > 0.98 * bound > 2.2 * std


def test_lecun_normal__reaches_every_linear_and_zeroes_biases():
    torch.manual_seed(0)
    net = build_backbone("hybrid", 64, 4, 2, 8, False, pattern="KLSG", init="lecun_normal",
                         multiple_of=8)
    linears = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert len(linears) > 10
    for m in linears:
        bound = 2 * TRUNC_STD_FACTOR / math.sqrt(m.in_features)
        assert m.weight.abs().max().item() <= bound * (1 + 1e-6)
        assert m.bias is None or not m.bias.any()
    assert any(m.bias is not None for m in linears)  # KDA's output gate has one


@pytest.mark.parametrize("overrides,message", [
    (dict(norm_gain=1), "norm_gain must be True or False, got norm_gain=1"),
    (dict(init="xavier"), "init must be one of ('torch', 'lecun_normal'), got init='xavier'"),
])
def test_norm_gain_and_init__bad_values_raise(overrides, message):
    with pytest.raises(BackboneConfigError, match=re.escape(message)):
        build_backbone(**(BASE | overrides))
