"""TRM's persistent ACT carry (Reasoner.act_carry_step): halted slots take the next batch's
rows and restart, the others go on with their example and latents; every slot is live in the
loss; slots halt at the step limit or when the Q head says so; a tiny TRM and HRM learn with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from tracegym.agents import build_policy
from tracegym.agents.reasoners import TaskSpec
from tracegym.agents.reasoners.base import ACTState, answer_correctness, sequence_loss

TASK = TaskSpec("copy", vocab_size=6, seq_len=8)
pytestmark = pytest.mark.usefixtures("one_thread")


def model(reasoner="trm", **extra):
    cfg = dict(dim=16, heads=2, multiple_of=16, puzzle_emb_len=0, halt_exploration_prob=0.0)
    if reasoner == "trm":
        cfg.update(depth=1, H_cycles=1, L_cycles=1, N_sup=3)
    else:
        cfg.update(H_layers=1, L_layers=1, H_cycles=1, L_cycles=1, halt_max_steps=3)
    torch.manual_seed(0)
    return build_policy(reasoner, "transformer", TASK, **{**cfg, **extra}).train()


def batch(seed, b=6):
    """A fixed permutation of the tokens 1..5 (to learn, from chance: 1 in 5)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(1, 6, (b, 8), generator=g)
    return {"inputs": x, "labels": x % 5 + 1}


def test_first_step_fills_every_slot_and_counts_one_step():
    m = model()
    data = batch(0)
    state, out = m.carry_step(None, data)
    assert torch.equal(state.inputs, data["inputs"]) and torch.equal(state.labels, data["labels"])
    assert state.steps.tolist() == [1] * 6
    assert out.loss.requires_grad and out.metrics["active"] == 1.0


def test_halted_slots_take_the_new_rows_and_restart_the_others_go_on():
    m = model()
    state, _ = m.carry_step(None, batch(0))
    # force slots 1 and 4 halted, the rest running
    halted = torch.zeros(6, dtype=torch.bool)
    halted[[1, 4]] = True
    state = ACTState(carry=state.carry, inputs=state.inputs, labels=state.labels,
                     identifiers=None, steps=state.steps, halted=halted)
    new = batch(1)
    fresh = m.initial_carry(6)
    seen = {}

    def spy(x, carry):  # record the latents each slot starts the segment from
        seen["y"] = carry.y.clone()
        return m.deep_recursion(x, carry)

    after, _ = m.act_carry_step(state, new, spy, max_steps=3, exploration_prob=0.0)
    for slot in range(6):
        source = new if halted[slot] else {"inputs": state.inputs, "labels": state.labels}
        assert torch.equal(after.inputs[slot], source["inputs"][slot])
        assert after.steps[slot] == (1 if halted[slot] else 2)
        expected_y = fresh.y[slot] if halted[slot] else state.carry.y[slot]
        assert torch.equal(seen["y"][slot], expected_y)


def test_loss_counts_every_slot_by_hand():
    m = model()
    data = batch(2)
    captured = {}

    def spy(x, carry):
        captured["out"] = m.deep_recursion(x, carry)
        return captured["out"]

    _, out = m.act_carry_step(None, data, spy, max_steps=3, exploration_prob=0.0)
    _, logits, q_halt = captured["out"]
    _, exact, _ = answer_correctness(logits.argmax(-1), data["labels"], TASK.ignore_label_id)
    expected = sequence_loss(logits, data["labels"], TASK.ignore_label_id).mean() + 0.5 * \
        F.binary_cross_entropy_with_logits(q_halt, exact.float())
    torch.testing.assert_close(out.loss, expected)


def test_slots_halt_at_the_step_limit_and_when_q_halt_is_positive():
    m = model()
    state = None
    for _ in range(3):  # the Q head starts at bias -5: nothing halts before the limit
        state, out = m.carry_step(state, batch(0))
    assert state.halted.all() and state.steps.tolist() == [3] * 6
    assert out.metrics["finished"].item() == 6
    torch.nn.init.constant_(m.q_head.bias, 5.0)  # now every slot wants to halt at once
    state, out = m.carry_step(state, batch(1))
    assert state.halted.all() and state.steps.tolist() == [1] * 6


def test_hrm_carry_step_has_the_q_continue_loss():
    m = model("hrm")
    state, out = m.carry_step(None, batch(0))
    assert "continue_loss" in out.metrics and out.metrics["continue_loss"] > 0
    state, out = m.carry_step(state, batch(1))
    assert state.steps.tolist() == [2] * 6


def test_carry_state_round_trips_through_tensors():
    m = model()
    state, _ = m.carry_step(None, batch(0))
    again = ACTState.from_tensors(state.tensors(), type(m.initial_carry(1)))
    assert torch.equal(again.carry.z, state.carry.z) and torch.equal(again.halted, state.halted)
    assert again.identifiers is None


def test_batch_of_another_size_is_refused():
    m = model()
    state, _ = m.carry_step(None, batch(0))
    with pytest.raises(ValueError, match="6 slots but the batch has 4 rows"):
        m.carry_step(state, batch(1, b=4))


@pytest.mark.parametrize("reasoner", ["trm", "hrm"])
def test_tiny_model_learns_with_the_carry(reasoner):
    m = model(reasoner, N_sup=2) if reasoner == "trm" else model(reasoner, halt_max_steps=2)
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    state, accs, losses = None, [], []
    for step in range(100):
        state, out = m.carry_step(state, batch(step, b=16))
        out.loss.backward()
        opt.step()
        opt.zero_grad()
        accs.append(out.metrics["token_acc"].item())
        losses.append(out.metrics["lm_loss"].item())
    assert sum(accs[:3]) / 3 < 0.4 and sum(accs[-10:]) / 10 > 0.95
    assert sum(losses[-10:]) < 0.5 * sum(losses[:10])
