"""Our backbones against TRM's formulas (SamsungSAILMontreal/TinyRecursiveModels, written out here
from ``models/layers.py`` and ``models/recursive_reasoning/trm.py``; their code is not imported).

- mlp_t: TRM's block transposes the states to (B, D, T), runs the token SwiGLU on them and
  RMS-normalises ``h + mlp_t(h)`` over that tensor's last axis, the sequence; then the channel
  SwiGLU with the usual post-norm over channels. A hand-computed 2x3 case and a reference block
  loaded with the same weights both check that our ``mlp_mixer`` does the same.
- ``norm_gain=False`` is TRM's weightless ``rms_norm``, so with it the whole stack is TRM's.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tracegym.agents.backbones import build_backbone

pytestmark = pytest.mark.usefixtures("one_thread")


def zeroed(net):
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "norm" not in name:
                p.zero_()
    return net


def test_mlp_t__post_norm_is_over_the_sequence_axis_by_hand():
    # T=2 positions, D=3 channels. With every mixer and MLP weight zero the block is
    # n2(n1(x)): n1 over each channel's column (TRM), n2 over each position's row.
    x = torch.tensor([[[1.0, 2.0, 3.0], [3.0, 0.0, 0.0]]], dtype=torch.float64)
    net = zeroed(build_backbone("mlp_mixer", dim=3, depth=1, heads=1, seq_len=2, causal=False,
                                multiple_of=8)).double()
    # n1, per column: (1, 3)/sqrt(5), (2, 0)/sqrt(2), (3, 0)/sqrt(4.5)
    #   -> rows (1/sqrt5, sqrt2, sqrt2) and (3/sqrt5, 0, 0), mean squares 1.4 and 0.6
    # n2, per row: (1/sqrt7, sqrt(10/7), sqrt(10/7)) and (sqrt3, 0, 0)
    want = torch.tensor([[[1 / math.sqrt(7), math.sqrt(10 / 7), math.sqrt(10 / 7)],
                          [math.sqrt(3), 0.0, 0.0]]], dtype=torch.float64)
    assert torch.allclose(net(x), want, atol=1e-5)
    # Normalising over channels first (before issue 18) gives row 0 = (1, 2, 3)/sqrt(14/3).
    channels = x / x.square().mean(-1, keepdim=True).sqrt()
    assert (net(x) - channels).abs().max() > 0.25


def rms_norm(h, eps=1e-5):  # TRM's rms_norm: float32 statistic over the last axis, no weight
    hf = h.float()
    return (hf * torch.rsqrt(hf.square().mean(-1, keepdim=True) + eps)).to(h.dtype)


def swiglu(h, gate_up, down):  # TRM's SwiGLU: gate, up = gate_up_proj(x).chunk(2)
    gate, up = F.linear(h, gate_up).chunk(2, dim=-1)
    return F.linear(F.silu(gate) * up, down)


def trm_mlp_t_block(h, weights):
    """TRM's TinyRecursiveReasoningModel_ACTV1Block.forward with mlp_t=True."""
    t_gate_up, t_down, gate_up, down = weights
    h = h.transpose(1, 2)  # (B, D, T)
    h = rms_norm(h + swiglu(h, t_gate_up, t_down))
    h = h.transpose(1, 2)
    return rms_norm(h + swiglu(h, gate_up, down))


def trm_attention_block(h, weights, heads):
    """The same block with mlp_t=False, without positions (pos_encodings none)."""
    qkv, out, gate_up, down = weights
    B, T, D = h.shape
    q, k, v = F.linear(h, qkv).view(B, T, 3, heads, D // heads).unbind(2)
    a = F.scaled_dot_product_attention(*(t.transpose(1, 2) for t in (q, k, v)))
    h = rms_norm(h + F.linear(a.transpose(1, 2).reshape(B, T, D), out))
    return rms_norm(h + swiglu(h, gate_up, down))


@pytest.mark.parametrize("backbone", ["mlp_mixer", "transformer"])
def test_trm_block__same_weights_give_the_same_logits(backbone):
    torch.manual_seed(0)
    D, T, V = 32, 12, 11
    net = build_backbone(backbone, dim=D, depth=2, heads=4, seq_len=T, causal=False,
                         multiple_of=16, norm_gain=False, init="lecun_normal", rope=False)
    net = net.double().eval()
    assert not [k for k in net.state_dict() if "norm" in k]  # TRM's norms have no weight
    lm_head = torch.randn(V, D, dtype=torch.float64) / math.sqrt(D)
    x = torch.randn(3, T, D, dtype=torch.float64)

    h = x
    for block in net.blocks:
        mixer = block.mixer
        if backbone == "mlp_mixer":
            weights = (mixer.mlp.gate_up.weight, mixer.mlp.down.weight,
                       block.mlp.gate_up.weight, block.mlp.down.weight)
            h = trm_mlp_t_block(h, weights)
        else:
            weights = (mixer.qkv.weight, mixer.out.weight,
                       block.mlp.gate_up.weight, block.mlp.down.weight)
            h = trm_attention_block(h, weights, heads=4)
    with torch.no_grad():
        ours, theirs = F.linear(net(x), lm_head), F.linear(h, lm_head)
    assert theirs.abs().mean() > 0.1
    assert torch.allclose(ours, theirs, atol=1e-10)


def test_paper_configs__use_trms_norm_and_init_and_others_keep_the_defaults():
    from tracegym.agents.reasoners import NAMED_CONFIGS

    for name, cfg in NAMED_CONFIGS.items():
        paper = cfg["reasoner"] in ("trm", "hrm") and not name.endswith("-cpu")
        assert (cfg.get("norm_gain", True), cfg.get("init", "torch")) == (
            (False, "lecun_normal") if paper else (True, "torch")), name


def test_lecun_init__reaches_the_head_and_truncates_the_token_embedding():
    from tracegym.agents import build_policy
    from tracegym.agents.backbones.layers import TRUNC_STD_FACTOR
    from tracegym.agents.reasoners.tasks import TaskSpec

    torch.manual_seed(0)
    task = TaskSpec("wide", vocab_size=512, seq_len=4)
    model = build_policy("trm", "mlp_mixer", task, dim=256, depth=1, heads=4,
                         init="lecun_normal", norm_gain=False)
    head, tokens = model.head.weight, model.embed.tokens.weight
    std = 1 / math.sqrt(256)  # TRM: lm_head LeCun (fan_in = dim), embedding std 1/sqrt(dim)
    for w in (head, tokens):
        assert abs(w.std().item() / std - 1) < 0.02
        assert w.abs().max().item() <= 2 * TRUNC_STD_FACTOR * std + 1e-7
    default = build_policy("trm", "mlp_mixer", task, dim=256, depth=1, heads=4)
    assert default.head.weight.std().item() < 0.7 * std  # PyTorch's default: 1/sqrt(3 fan_in)
