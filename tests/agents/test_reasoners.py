"""Reasoners: every reasoner x backbone builds, trains (its loss falls on a fixed batch) and solves;
TRM's recursion and deep supervision carry gradients only where the paper says; losses match
hand computations; a tiny TRM learns 4x4 Sudoku; bad configurations fail clearly."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from contextlib import contextmanager

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tracegym.agents import build_policy
from tracegym.agents.backbones import BACKBONE_DEFAULTS
from tracegym.agents.reasoners import (
    NAMED_CONFIGS,
    PUZZLE_REASONERS,
    REASONERS,
    HRMConfig,
    ReasonerConfigError,
    TaskSpec,
    TRMConfig,
    log_stablemax,
    sequence_loss,
    token_loss,
)
from tracegym.agents.reasoners.base import answer_correctness, answer_metrics
from tracegym.errors import TracegymError

BACKBONES = ["transformer", "mlp_mixer", "hybrid"]
PAIRS = [(r, b) for r in PUZZLE_REASONERS for b in BACKBONES
         if not (r == "autoregressive" and b == "mlp_mixer")]
TASK = TaskSpec("sudoku4", vocab_size=6, seq_len=16)  # a 4x4 Sudoku


pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(reasoner: str, backbone: str, **extra) -> dict:
    """A small, fast config for each reasoner (hybrid: one Gated DeltaNet and one gated attention
    layer per module)."""
    cfg = dict(dim=32, heads=2, multiple_of=16, chunk_size=16)
    if backbone == "hybrid":
        cfg.update(pattern="GA")
    if reasoner == "hrm":
        cfg.update(H_layers=1, L_layers=1, H_cycles=2, L_cycles=2, halt_max_steps=2)
    else:
        cfg.update(depth=2 if backbone == "hybrid" else 1)
    if reasoner == "trm":
        cfg.update(H_cycles=2, L_cycles=2, N_sup=2, puzzle_emb_len=2)
    return {**cfg, **extra}


@pytest.fixture
def batch():
    """Eight 4x4 puzzles; the first three cells of each label are ignored."""
    inputs, labels = sudoku4_tokens(seed=5, count=8)
    labels[:, :3] = TASK.ignore_label_id
    return {"inputs": inputs, "labels": labels,
            "puzzle_identifiers": torch.zeros(8, dtype=torch.long)}


def fixed_loss(model, batch) -> float:
    """The first supervision step's answer loss under a fixed seed (diffusion draws t and masks).

    The answer loss ("lm_loss"), not the total: TRM's and HRM's halting BCE *rises* while the
    answers improve (newly solved samples need q_halt > 0, which the Q head learns later)."""
    torch.manual_seed(1234)
    with torch.no_grad():
        return model(batch).metrics["lm_loss"]


# ----------------------------------------------------------------------------- every pair

@pytest.mark.parametrize(("reasoner", "backbone"), PAIRS)
def test_reasoner__builds_learns_and_solves(reasoner, backbone, batch):
    torch.manual_seed(0)
    model = build_policy(reasoner, backbone, TASK, **tiny(reasoner, backbone))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    before = fixed_loss(model, batch)
    updates = 0
    while updates < 24:  # AdamW steps, whatever the number of supervision steps per batch
        for out in model.supervision_steps(batch):
            assert torch.isfinite(out.loss) and out.loss.dim() == 0
            assert out.logits.shape == (8, 16, TASK.vocab_size)
            assert all(math.isfinite(v) for v in out.metrics.values())
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            updates += 1
    after = fixed_loss(model, batch)
    print(f"{reasoner}-{backbone}: {before:.3f} -> {after:.3f}")
    assert after < 0.8 * before, (before, after)

    model.eval()
    answer = model.solve(batch["inputs"], batch["puzzle_identifiers"])
    assert answer.shape == (8, 16) and answer.dtype == torch.long
    assert 0 <= answer.min() and answer.max() < TASK.vocab_size
    json.dumps(model.config)  # checkpoints store it


def test_build_policy__config_rebuilds_the_architecture():
    model = build_policy("trm", "mlp_mixer", TASK, **tiny("trm", "mlp_mixer"))
    again = build_policy(**model.config)
    assert again.config == model.config
    assert {k: v.shape for k, v in again.state_dict().items()} == \
        {k: v.shape for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(NAMED_CONFIGS))
def test_named_configs__build(name):
    # the paper widths are slow to build on CPU; the keys and the rest of the values are checked
    from tracegym.training.tasks import task_spec  # the env's spec: the training layer knows it

    cfg = {**NAMED_CONFIGS[name], "dim": 32, "heads": 2}
    model = build_policy(**{**cfg, "task": task_spec(cfg["task"])})
    assert model.config["reasoner"] == cfg["reasoner"]


@pytest.mark.parametrize(("reasoner", "extra", "steps"), [
    ("trm", {"N_sup": 3}, 3), ("hrm", {"halt_max_steps": 5}, 5), ("feedforward", {}, 1),
    ("diffusion", {"decode_steps": 4}, 1), ("autoregressive", {}, 1)])
def test_reasoner__max_supervision_steps_is_what_a_batch_yields_at_most(reasoner, extra, steps,
                                                                        batch):
    from tracegym.training.trainer import supervision_steps_per_batch

    backbone = "transformer"
    model = build_policy(reasoner, backbone, TASK, **tiny(reasoner, backbone, **extra)).eval()
    assert model.max_supervision_steps == supervision_steps_per_batch(model) == steps
    assert len(list(model.supervision_steps(batch))) == steps  # eval runs every step


def test_named_configs__trm_sudoku_matches_the_paper():
    cfg = NAMED_CONFIGS["trm-sudoku-extreme"]
    assert (cfg["backbone"], cfg["dim"], cfg["depth"], cfg["H_cycles"], cfg["L_cycles"],
            cfg["N_sup"], cfg["loss"]) == ("mlp_mixer", 512, 2, 3, 6, 16, "stablemax")


# ----------------------------------------------------------------------------- configs

# model.config of models built before the reasoners had config dataclasses (captured from the
# code of commit 28930bc): checkpoints store these, so they must still build the same model
STORED = {
    "trm": {
        "reasoner": "trm", "backbone": "mlp_mixer",
        "task": {"name": "sudoku4", "vocab_size": 6, "seq_len": 16, "num_puzzle_identifiers": 1,
                 "pad_id": 0, "ignore_label_id": 0},
        "dim": 32, "depth": 1, "heads": 4, "loss": "stablemax", "puzzle_emb_len": 2,
        "puzzle_emb_dim": 32, "norm": "post", "expansion": 4.0, "multiple_of": 16,
        "pattern": None, "qk_norm": True, "rope_base": 10000.0, "expand_v": 1.0, "conv_size": 4,
        "chunk_size": 64, "impl": "auto", "latent_dim": None, "window": 64, "rope": None,
        "mla_gate": False, "norm_gain": True, "init": "torch", "H_cycles": 2, "L_cycles": 2,
        "N_sup": 3,
        "halt_exploration_prob": 0.5,
    },
    "hrm": {
        "reasoner": "hrm", "backbone": "transformer",
        "task": {"name": "sudoku4", "vocab_size": 6, "seq_len": 16, "num_puzzle_identifiers": 1,
                 "pad_id": 0, "ignore_label_id": 0},
        "dim": 32, "heads": 2, "loss": "stablemax", "puzzle_emb_len": 1, "puzzle_emb_dim": 32,
        "norm": "post", "expansion": 4.0, "multiple_of": 16, "pattern": None, "qk_norm": True,
        "rope_base": 10000.0, "expand_v": 1.0, "conv_size": 4, "chunk_size": 64, "impl": "auto",
        "latent_dim": None, "window": 64, "rope": None, "mla_gate": False, "norm_gain": True,
        "init": "torch", "H_cycles": 2,
        "L_cycles": 2, "H_layers": 1, "L_layers": 1, "halt_max_steps": 3,
        "halt_exploration_prob": 0.5,
    },
    "diffusion": {
        "reasoner": "diffusion", "backbone": "mlp_mixer",
        "task": {"name": "sudoku4", "vocab_size": 6, "seq_len": 16, "num_puzzle_identifiers": 1,
                 "pad_id": 0, "ignore_label_id": 0},
        "dim": 32, "depth": 1, "heads": 4, "loss": "stablemax", "puzzle_emb_len": 0,
        "puzzle_emb_dim": 32, "norm": "post", "expansion": 4.0, "multiple_of": 16,
        "pattern": None, "qk_norm": True, "rope_base": 10000.0, "expand_v": 1.0, "conv_size": 4,
        "chunk_size": 64, "impl": "auto", "latent_dim": None, "window": 64, "rope": None,
        "mla_gate": False, "norm_gain": True, "init": "torch", "decode_steps": 3,
    },
}


@pytest.mark.parametrize("name", list(STORED))
def test_config__a_stored_config_still_builds_the_same_model(name, batch):
    stored = json.loads(json.dumps(STORED[name]))  # as a checkpoint reads it back
    model = build_policy(**stored)
    assert model.config == STORED[name]
    assert list(model.config) == list(STORED[name])  # the same key order, too
    # a checkpoint written before norm_gain/init existed builds with their defaults
    older = {k: v for k, v in stored.items() if k not in ("norm_gain", "init")}
    assert build_policy(**older).config == STORED[name]
    out = next(model.supervision_steps(batch))
    assert torch.isfinite(out.loss)


def test_config__typed_frozen_and_read_by_attribute():
    model = build_policy("trm", "mlp_mixer", TASK, **tiny("trm", "mlp_mixer", L_cycles=3))
    assert isinstance(model.cfg, TRMConfig)
    assert (model.cfg.H_cycles, model.cfg.L_cycles, model.cfg.N_sup) == (2, 3, 2)
    assert model.cfg.puzzle_emb_dim == model.cfg.dim  # None resolved, so a checkpoint says it
    with pytest.raises(AttributeError):  # frozen: a built model's config cannot drift
        model.cfg.H_cycles = 5
    assert model.config == {"reasoner": "trm", "backbone": "mlp_mixer",
                            "task": dataclasses.asdict(TASK), **model.cfg.to_dict()}
    with pytest.raises(ReasonerConfigError, match=re.escape("N_sup must be an int >= 1")):
        TRMConfig(N_sup=0)


@pytest.mark.parametrize("name", list(REASONERS))
def test_config__backbone_options_are_backbone_config_fields_with_their_defaults(name):
    config = REASONERS[name].Config
    defaults = config.defaults()
    assert {key: defaults[key] for key in BACKBONE_DEFAULTS} == BACKBONE_DEFAULTS
    assert REASONERS[name].valid_keys() == config.keys() == list(defaults)
    docs = config.field_docs()
    assert all(docs[key] for key in config.keys()), [k for k in config.keys() if not docs[k]]


def test_config__hrm_has_no_depth_and_its_own_keys():
    assert "depth" not in HRMConfig.keys() and "depth" in TRMConfig.keys()
    assert HRMConfig.keys()[-6:] == ["H_cycles", "L_cycles", "H_layers", "L_layers",
                                     "halt_max_steps", "halt_exploration_prob"]


# ----------------------------------------------------------------------------- TRM

def count_net_calls(model):
    """Record, for every call of model.net, whether grad was enabled."""
    calls = []
    handle = model.net.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))
    return calls, handle


def test_trm__only_the_last_recursion_carries_grad(batch):
    model = build_policy("trm", "mlp_mixer", TASK, **tiny("trm", "mlp_mixer", H_cycles=3,
                                                              L_cycles=2, N_sup=1))
    calls, handle = count_net_calls(model)
    model(batch)
    handle.remove()
    # T=3 recursions of n=2 z-updates and one y-update: 9 calls, the last 3 with grad
    assert calls == [False] * 6 + [True] * 3


def test_trm__deep_supervision_carries_state_detached(batch):
    model = build_policy("trm", "mlp_mixer", TASK,
                         **tiny("trm", "mlp_mixer", H_cycles=1, N_sup=2,
                                halt_exploration_prob=0.0))
    steps = model.supervision_steps(batch)
    first = next(steps)
    first.loss.backward()
    assert model.y_init.grad is not None  # with T=1 the first step reaches the initial latents
    model.zero_grad(set_to_none=True)
    second = next(steps)
    second.loss.backward()  # no "backward through the graph a second time": y, z were detached
    assert model.y_init.grad is None and model.z_init.grad is None
    assert model.head.weight.grad is not None
    assert second.metrics["steps"] == 2.0 and second.halted
    with pytest.raises(StopIteration):
        next(steps)


def test_trm__halting_head_starts_by_continuing(batch):
    model = build_policy("trm", "mlp_mixer", TASK,
                         **tiny("trm", "mlp_mixer", N_sup=4, halt_exploration_prob=0.0))
    assert model.q_head.bias.item() == -5.0 and model.q_head.weight.abs().sum() == 0
    outs = list(model.supervision_steps(batch))
    assert [o.metrics["steps"] for o in outs] == [1.0, 2.0, 3.0, 4.0]
    assert [o.halted for o in outs] == [False, False, False, True]


def test_trm__halts_in_training_runs_all_steps_in_eval(batch):
    model = build_policy("trm", "mlp_mixer", TASK,
                         **tiny("trm", "mlp_mixer", N_sup=4, halt_exploration_prob=0.0))
    with torch.no_grad():
        model.q_head.bias.fill_(10.0)  # every sample says "halt"
    outs = list(model.supervision_steps(batch))
    assert len(outs) == 1 and outs[0].halted
    model.eval()
    assert len(list(model.supervision_steps(batch))) == 4
    calls, handle = count_net_calls(model)
    model.solve(batch["inputs"])
    handle.remove()
    assert len(calls) == 4 * 2 * (2 + 1)  # N_sup x T x (n + 1): the batch runs every step


def test_trm__exploration_forces_a_minimum_of_steps(batch):
    torch.manual_seed(0)
    model = build_policy("trm", "mlp_mixer", TASK,
                         **tiny("trm", "mlp_mixer", N_sup=4, halt_exploration_prob=1.0))
    with torch.no_grad():
        model.q_head.bias.fill_(10.0)
    outs = list(model.supervision_steps(batch))
    assert len(outs) >= 2  # every sample runs 2..N_sup steps before it may halt


# ----------------------------------------------------------------------------- HRM

def test_hrm__one_step_gradient(batch):
    model = build_policy("hrm", "mlp_mixer", TASK, **tiny("hrm", "mlp_mixer"))
    calls, handle = count_net_calls_of(model.L_net)
    model.eval()  # no Q-learning target pass
    model(batch)
    handle.remove()
    assert calls == [False] * 3 + [True]  # H_cycles x L_cycles = 4 L updates, the last with grad


def count_net_calls_of(net):
    calls = []
    return calls, net.register_forward_hook(lambda *_: calls.append(torch.is_grad_enabled()))


def test_hrm__q_learning_in_training_all_segments_in_eval(batch):
    model = build_policy("hrm", "mlp_mixer", TASK,
                         **tiny("hrm", "mlp_mixer", halt_max_steps=3, halt_exploration_prob=0.0))
    outs = list(model.supervision_steps(batch))
    assert [o.metrics["steps"] for o in outs] == [1.0, 2.0, 3.0]  # q_halt == q_continue at init
    assert all(o.metrics["continue_loss"] > 0 for o in outs)
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor([10.0, -10.0]))  # halt >> continue
    assert len(list(model.supervision_steps(batch))) == 1
    model.eval()
    assert len(list(model.supervision_steps(batch))) == 3


# ----------------------------------------------------------------------------- ACT (TRM, HRM)

def act_batch():
    g = torch.Generator().manual_seed(1)
    inputs = torch.randint(1, 6, (4, 16), generator=g)
    labels = torch.randint(1, 6, (4, 16), generator=g)
    labels[0, :3] = 0
    labels[1, :] = inputs[1]
    return {"inputs": inputs, "labels": labels}


@pytest.mark.parametrize(("reasoner", "backbone", "extra", "bias", "losses", "active"), [
    ("trm", "transformer", dict(depth=1, H_cycles=2, L_cycles=1, N_sup=4), [0.5],
     [2.402096, 1.744291, 1.110575, 0.547404], [1.0, 0.75, 0.5, 0.25]),
    ("hrm", "mlp_mixer", dict(H_layers=1, L_layers=1, H_cycles=1, L_cycles=2, halt_max_steps=4,
                              loss="softmax"), [0.5, -0.5],
     [2.633962, 1.834373, 1.204194], [1.0, 0.75, 0.5]),  # MLP-t norm over the sequence
])
def test_act_steps__losses_and_halting_as_before_the_shared_loop(reasoner, backbone, extra, bias,
                                                                 losses, active):
    # Values from TRM's and HRM's own loops before they shared Reasoner.act_steps (gradients,
    # metrics and solve() were compared bit for bit then): samples halt one by one, each
    # halted sample weighs 0 in later losses, and the batch ends when the last one halts.
    torch.manual_seed(0)
    model = build_policy(reasoner, backbone, TASK, dim=32, heads=2, multiple_of=16,
                         halt_exploration_prob=0.5, **extra)
    with torch.no_grad():
        model.q_head.bias.copy_(torch.tensor(bias))  # q_halt > 0 (and > q_continue): halting
    torch.manual_seed(100)
    outs = []
    for out in model.supervision_steps(act_batch()):  # with an SGD step after each
        outs.append(out)
        model.zero_grad(set_to_none=True)
        out.loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                if p.grad is not None:
                    p -= 0.05 * p.grad
    assert [o.loss.item() for o in outs] == pytest.approx(losses, abs=1e-4)
    assert [o.metrics["active"] for o in outs] == active
    assert [o.halted for o in outs] == [False] * (len(outs) - 1) + [True]
    assert ("continue_loss" in outs[0].metrics) == (reasoner == "hrm")


# ----------------------------------------------------------------------------- metrics

HOST_READS = ("item", "tolist", "numpy", "cpu", "__bool__", "__float__", "__int__", "__index__",
              "__array__")


@contextmanager
def host_reads(monkeypatch):
    """The list of torch.Tensor methods that read a value back to the host, as they are called
    in the block (each makes the host wait for the device)."""
    reads = []

    def counting(name):
        real = getattr(torch.Tensor, name)

        def read(self, *args, **kwargs):
            reads.append(name)
            return real(self, *args, **kwargs)
        return read

    with monkeypatch.context() as m:
        for name in HOST_READS:
            m.setattr(torch.Tensor, name, counting(name))
        yield reads


@pytest.mark.parametrize("reasoner", PUZZLE_REASONERS)
def test_supervision_steps__metrics_stay_on_the_device(reasoner, batch, monkeypatch):
    # The metrics are detached 0-d tensors that the Trainer reads once per log_every steps
    # ("steps", known on the host, is a float). The one read of a step is TRM's and HRM's
    # halting flag in training (does another step come?): none on the last step, none in eval.
    torch.manual_seed(0)
    more = {"trm": dict(N_sup=3), "hrm": dict(halt_max_steps=3)}.get(reasoner, {})
    model = build_policy(reasoner, "transformer", TASK,
                         **tiny(reasoner, "transformer", **more))
    for training in (True, False):
        model.train(training)
        steps, per_step = model.supervision_steps(batch), []
        while True:
            with host_reads(monkeypatch) as reads:
                out = next(steps, None)
            if out is None:
                break
            per_step.append(reads)
            for key, value in out.metrics.items():
                if key == "steps":
                    assert isinstance(value, float)
                    continue
                assert isinstance(value, torch.Tensor), key
                assert value.shape == () and value.dtype == torch.float32, key
                assert not value.requires_grad, key
        halting = ["__bool__"] if training and reasoner in ("trm", "hrm") else []
        assert per_step == [halting] * (model.max_supervision_steps - 1) + [[]], training


def test_answer_correctness__per_example_and_examples_without_a_label_left_out():
    labels = torch.tensor([[1, 2, 0], [1, 2, 3], [0, 0, 0], [3, 3, 3]])  # 0 = ignored
    pred = torch.tensor([[1, 2, 5], [1, 1, 3], [4, 4, 4], [3, 3, 3]])
    correct, exact, valid = answer_correctness(pred, labels, 0)
    assert correct.tolist() == [2, 2, 0, 3] and valid.tolist() == [2, 3, 0, 3]
    assert exact.tolist() == [True, False, False, True]  # row 2 has no label: not exact
    logits = F.one_hot(pred, 6).float()
    metrics = answer_metrics(logits, labels, 0)
    # row 2 counts in neither accuracy: 7 of 8 tokens, 2 of 3 labelled rows
    assert metrics["token_acc"].item() == pytest.approx(7 / 8)
    assert metrics["exact_acc"].item() == pytest.approx(2 / 3)
    metrics = answer_metrics(logits, labels, 0, rows=torch.tensor([False, True, True, True]))
    assert metrics["token_acc"].item() == pytest.approx(5 / 6)
    assert metrics["exact_acc"].item() == pytest.approx(1 / 2)
    metrics = answer_metrics(logits, labels, 0, rows=torch.tensor([False, False, True, False]))
    assert metrics["token_acc"].item() == 0 and metrics["exact_acc"].item() == 0
    with pytest.raises(ValueError, match=re.escape("pred and labels must have one shape, got "
                                                   "(4, 2) and (4, 3)")):
        answer_correctness(pred[:, :2], labels, 0)


# ----------------------------------------------------------------------------- shared parts

def test_puzzle_embedding__zero_init_one_row_per_identifier(batch):
    task = TaskSpec("sudoku4-ids", vocab_size=6, seq_len=16, num_puzzle_identifiers=5)
    model = build_policy("trm", "mlp_mixer", task, **tiny("trm", "mlp_mixer", puzzle_emb_len=2,
                                                         puzzle_emb_dim=40))
    table = model.embed.puzzle.weight
    assert table.shape == (5, 40) and (table == 0).all()
    x = model.embed(batch["inputs"], torch.full((8,), 3))
    assert x.shape == (8, 2 + 16, 32)
    model({**batch, "puzzle_identifiers": torch.full((8,), 3)}).loss.backward()
    ids, grads = model.embed.puzzle.row_gradients()  # a sparse table: the rows the batch used
    used = torch.zeros(5).index_add_(0, ids, grads.abs().sum(-1)) > 0
    assert used.tolist() == [False, False, False, True, False]


@pytest.mark.parametrize("reasoner", list(PUZZLE_REASONERS))
def test_reasoner__same_seed_same_losses(reasoner, batch):
    def losses():
        torch.manual_seed(7)
        model = build_policy(reasoner, "transformer", TASK, **tiny(reasoner, "transformer"))
        return [out.loss.item() for out in model.supervision_steps(batch)]

    assert losses() == losses()


# ----------------------------------------------------------------------------- AR, diffusion

def test_autoregressive__cached_decoding_equals_full_recompute(batch):
    torch.manual_seed(0)
    model = build_policy("autoregressive", "hybrid", TASK,
                         **tiny("autoregressive", "hybrid", puzzle_emb_len=2))
    with torch.no_grad():  # a non-zero puzzle prefix, so the prefill covers it
        model.embed.puzzle.weight.normal_()
    model.eval()
    fast = model.solve(batch["inputs"])
    # greedy decoding that re-runs the whole sequence for every token (no cache)
    with torch.no_grad():
        x = model.embed(batch["inputs"], None) + model.segment.weight[0]  # (B, P+T, D)
        tokens = []
        for _ in range(16):
            seq = x if not tokens else torch.cat(
                [x, model.answer_embed(torch.stack(tokens, 1))], dim=1)
            tokens.append(model.head(model.net(seq)[:, -1]).argmax(-1))
    assert torch.equal(fast, torch.stack(tokens, 1))


def test_diffusion__one_step_decoding_is_the_argmax_of_the_fully_masked_input(batch):
    model = build_policy("diffusion", "transformer", TASK,
                         **tiny("diffusion", "transformer", decode_steps=1))
    model.eval()
    masked = torch.full_like(batch["inputs"], model.mask_id)
    with torch.no_grad():
        expected = model.logits(batch["inputs"], masked, None).argmax(-1)
    assert torch.equal(model.solve(batch["inputs"]), expected)
    many = model.solve(batch["inputs"], decode_steps=5)
    assert (many < TASK.vocab_size).all()  # no mask token left


# ----------------------------------------------------------------------------- losses

def test_stablemax__matches_hand_computation():
    logits = torch.tensor([[[1.0, -1.0, 0.0]]])
    # s = [1 + 1, 1 / (1 + 1), 0 + 1] = [2, 0.5, 1], sum 3.5
    assert torch.allclose(log_stablemax(logits.double()),
                          torch.tensor([[[2 / 3.5, 0.5 / 3.5, 1 / 3.5]]]).double().log())
    loss = token_loss(logits, torch.tensor([[1]]), ignore_label_id=-100)
    assert loss.item() == pytest.approx(-math.log(0.5 / 3.5))


def test_losses__ignore_labels_carry_nothing():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5)
    labels = torch.tensor([[0, 2, 3, 0], [4, 0, 0, 0]])
    for kind in ("stablemax", "softmax"):
        per_token = token_loss(logits, labels, 0, kind)
        assert (per_token[labels == 0] == 0).all()
        # the per-sample mean divides by the number of valid labels only
        expected = per_token.sum(-1) / torch.tensor([2.0, 1.0])
        assert torch.allclose(sequence_loss(logits, labels, 0, kind), expected)
    soft = token_loss(logits, labels, 0, "softmax")
    ref = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=0, reduction="none")
    assert torch.allclose(soft, ref)


# ----------------------------------------------------------------------------- learning

def sudoku4_tokens(seed: int, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    from tracegym.envs.sudoku import tokens
    from tracegym.envs.sudoku.generator import SudokuGenerator

    puzzles, solutions, _ = SudokuGenerator(4, "medium").generate_arrays(seed=seed, count=count)
    return (torch.from_numpy(tokens.encode(puzzles).astype(np.int64)),
            torch.from_numpy(tokens.encode(solutions).astype(np.int64)))


@pytest.mark.slow
def test_trm__learns_4x4_sudoku():
    # 20 batches of 128 x 4 supervision steps = 80 AdamW steps (~8 s on an idle core, ~20 s on a
    # busy one); held-out exact solves went 0% -> 83% after 64 steps and -> 99% after 100.
    torch.manual_seed(0)
    inputs, labels = sudoku4_tokens(seed=3, count=2500)
    train_x, train_y, test_x, test_y = inputs[:2000], labels[:2000], inputs[2000:], labels[2000:]
    model = build_policy("trm", "mlp_mixer", TASK, dim=64, depth=1, heads=4, multiple_of=32,
                         loss="softmax", H_cycles=2, L_cycles=2, N_sup=4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

    def exact() -> float:
        model.eval()
        solved = (model.solve(test_x) == test_y).all(-1).float().mean().item()
        model.train()
        return solved

    start = exact()
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        idx = torch.randint(0, len(train_x), (128,), generator=g)
        for out in model.supervision_steps({"inputs": train_x[idx], "labels": train_y[idx]}):
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
    end = exact()
    print(f"TRM 4x4 Sudoku held-out exact: {start:.3f} -> {end:.3f}")
    assert start < 0.1 and end > 0.6, (start, end)


# ----------------------------------------------------------------------------- bad input

BAD = [
    (dict(reasoner="nope"), "unknown reasoner 'nope'; valid names: feedforward, trm, hrm, "
                            "diffusion, autoregressive"),
    (dict(backbone="lstm"), "unknown backbone 'lstm'; valid names: transformer, mlp_mixer, "
                            "gated_attention, gated_deltanet, hybrid"),
    # the agents do not know the envs: the training layer turns a task name into a TaskSpec
    (dict(task="sudoku4"), "task 'sudoku4': pass a TaskSpec; "
                           "tracegym.training.tasks.task_spec('sudoku4') builds it from the env"),
    (dict(dimm=32), "unknown config key(s) ['dimm'] for reasoner 'trm' ('dimm': did you mean "
                    "'dim'?); valid keys: dim, depth"),
    (dict(H_cyles=2, zzz=1), "unknown config key(s) ['H_cyles', 'zzz'] for reasoner 'trm' "
                             "('H_cyles': did you mean 'H_cycles'?); valid keys"),
    (dict(H_cycles="3"), "H_cycles must be an int >= 1, got H_cycles='3'"),
    (dict(N_sup=2.0), "N_sup must be an int >= 1, got N_sup=2.0"),
    (dict(halt_exploration_prob="0.1"),
     "halt_exploration_prob must be a number in [0, 1], got halt_exploration_prob='0.1'"),
    (dict(puzzle_emb_dim=0), "puzzle_emb_dim must be an int >= 1 or None, got puzzle_emb_dim=0"),
    (dict(norm=1), "norm must be a string, got norm=1"),  # a backbone option, checked by type
    (dict(rope="yes"), "rope must be True, False or None, got rope='yes'"),
    (dict(qk_norm=1), "qk_norm must be True or False, got qk_norm=1"),
    (dict(norm="pree"), "norm must be one of"),  # its value: by BackboneConfig
    (dict(dim=30, heads=4), "dim must be divisible by heads, got dim=30, heads=4"),
    (dict(dim=0), "dim must be an int >= 1, got dim=0"),
    (dict(loss="mse"), "loss must be one of ('stablemax', 'softmax'), got loss='mse'"),
    (dict(H_cycles=0), "H_cycles must be an int >= 1, got H_cycles=0"),
    (dict(halt_exploration_prob=2), "halt_exploration_prob must be a number in [0, 1]"),
    (dict(reasoner="hrm", depth=2), "unknown config key(s) ['depth'] for reasoner 'hrm'"),
    (dict(reasoner="diffusion", decode_steps=0), "decode_steps must be an int >= 1, got "
                                                 "decode_steps=0"),
    (dict(reasoner="feedforward", decode_steps=2),
     "unknown config key(s) ['decode_steps'] for reasoner 'feedforward'"),
    (dict(reasoner="autoregressive"), "the autoregressive reasoner needs a causal backbone; "
                                      "'mlp_mixer'"),
    (dict(reasoner="autoregressive", backbone="hybrid", pattern="GM"),
     "the autoregressive reasoner needs a causal backbone; 'hybrid' (pattern 'GM')"),
    (dict(puzzle_emb_len=1, puzzle_emb_dim=64), "puzzle_emb_dim must be <= puzzle_emb_len * dim"),
]


def test_causal_reasoners__error_names_every_causal_backbone():
    from tracegym.agents.backbones import BACKBONES as ALL

    with pytest.raises(ValueError, match="needs a causal backbone") as err:
        build_policy("autoregressive", "mlp_mixer", TASK, dim=32, heads=2)
    named = str(err.value).rpartition("use one of ")[2].split(", ")
    assert {"kda", "mla", "sliding_window"} <= set(named)
    assert set(named) == {name for name, pattern in ALL.items() if "M" not in pattern}


@pytest.mark.parametrize(("change", "message"), BAD)
def test_build_policy__bad_arguments_raise(change, message):
    args = dict(reasoner="trm", backbone="mlp_mixer", task=TASK, dim=32, heads=2,
                multiple_of=16)
    args.update(change)
    with pytest.raises(ValueError, match=re.escape(message)) as err:
        build_policy(**args)
    if "task" not in change:  # TaskSpec's own errors are plain ValueErrors (agents/tasks.py)
        assert isinstance(err.value, TracegymError)


def test_build_policy__an_unknown_key_is_an_unknown_option_error():
    from tracegym.agents.backbones.config import UnknownOptionError
    from tracegym.agents.reasoners import UnknownKeyError

    with pytest.raises(UnknownOptionError) as err:
        build_policy("hrm", "transformer", TASK, depth=2)
    assert isinstance(err.value, (UnknownKeyError, TypeError, ValueError))


def test_task_spec__from_metadata():
    meta = {"pad_id": 0, "ignore_label_id": 0, "blank_identifier_id": 0, "vocab_size": 12,
            "seq_len": 900, "num_puzzle_identifiers": 801, "sets": ["all"]}
    assert TaskSpec.from_metadata("arc", meta) == TaskSpec("arc", 12, 900, 801, 0, 0)
    with pytest.raises(ValueError, match=re.escape("metadata lacks ['seq_len']")):
        TaskSpec.from_metadata("x", {"vocab_size": 3})


@pytest.mark.parametrize(("fields", "message"), [
    (dict(vocab_size=0), "TaskSpec.vocab_size must be a positive int, got 0"),
    (dict(seq_len=2.5), "TaskSpec.seq_len must be a positive int, got 2.5"),
    (dict(pad_id=9), "TaskSpec.pad_id must be in 0..5, got 9"),
])
def test_task_spec__bad_fields_raise(fields, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        TaskSpec(**{"name": "t", "vocab_size": 6, "seq_len": 16, **fields})


def test_solve__rejects_a_wrong_length():
    model = build_policy("feedforward", "mlp_mixer", TASK, dim=32, heads=2, multiple_of=16)
    with pytest.raises(ValueError, match=re.escape("inputs must be (B, 16), got (2, 15)")):
        model.solve(torch.ones(2, 15, dtype=torch.long))


def test_log_stablemax__finite_gradient_at_a_logit_of_one():
    # a logit of exactly 1 made the discarded 1 / (1 - x) branch inf, and its gradient nan
    from tracegym.agents.reasoners.base import log_stablemax

    x = torch.tensor([[1.0, -2.0, 0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    log_stablemax(x)[0, 1].backward()
    assert torch.isfinite(x.grad).all()
