"""The envs' agent I/O modules: found by package, their token specs, and a fifth env that is one
new folder and nothing else, evaluated and specified through its own module."""

from __future__ import annotations

import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

import tracegym.envs
from tracegym.errors import TracegymError
from tracegym.packages import subpackages
from tracegym.training.evaluate import evaluate_in_env
from tracegym.training.tasks import agent_io, env_ids, task_of_env, task_packages, task_spec

torch.set_num_threads(1)


class StandIn(nn.Module):
    """A policy whose ``solve`` maps each input row (numpy) with ``answer``."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer

    def solve(self, inputs, puzzle_identifiers=None):
        return torch.from_numpy(np.stack([self.answer(r) for r in inputs.numpy()]))


def test_task_packages__the_envs_with_an_agent_io_module():
    # ExecTrace is scored by training/evaluate_traces.py (text generation), so it has none
    assert task_packages() == ["arc", "maze", "sudoku"]
    assert task_of_env("tracegym/Maze-v0") == "maze" and env_ids("sudoku") == ["tracegym/Sudoku-v0"]


@pytest.mark.parametrize("env_id", ["CartPole-v1", "tracegym/ExecTrace-v0", "tracegym/Nope-v0"])
def test_task_of_env__an_env_without_agent_io_names_the_ones_that_have_one(env_id):
    message = (f"env: evaluation supports ['tracegym/ARC-v0', 'tracegym/Maze-v0', "
               f"'tracegym/Sudoku-v0'], got {env_id!r}")
    with pytest.raises(TracegymError, match=f"^{message.replace('[', '.').replace(']', '.')}$"):
        task_of_env(env_id)


@pytest.mark.parametrize("name, vocab_size, seq_len", [
    # the values agents/reasoners/tasks.py hard-coded in TASKS before the specs came from here
    ("sudoku", 11, 81), ("sudoku4", 6, 16), ("sudoku6", 8, 36), ("sudoku16", 18, 256),
    ("maze", 6, 900), ("maze11", 6, 121), ("arc", 12, 900), ("arc30", 12, 900),
    ("arc10", 12, 100), ("arc1", 12, 1),  # a smaller ARC canvas (tracegym data arc --side N)
])
def test_task_spec__from_the_env_agent_io(name, vocab_size, seq_len):
    spec = task_spec(name, num_puzzle_identifiers=3)
    assert (spec.name, spec.vocab_size, spec.seq_len, spec.num_puzzle_identifiers) == \
        (name, vocab_size, seq_len, 3)


@pytest.mark.parametrize("name, message", [
    ("arc31", "size must be in 1..30, got 31"),
    ("arc0", "size must be in 1..30, got 0"),
    ("chess", "task: unknown env task 'chess'; valid names: arc, maze, sudoku"),
    ("exectrace", "task: 'exectrace' has no agent I/O module (tracegym.envs.exectrace.agent_io)"),
])
def test_task_spec__bad_names(name, message):
    with pytest.raises(TracegymError, match=message.replace("(", r"\(").replace(")", r"\)")):
        task_spec(name)


@pytest.mark.parametrize("env_id, options", [
    ("tracegym/Sudoku-v0", {"size": 6, "difficulty": "easy"}),
    ("tracegym/Maze-v0", {"size": 11, "kind": "kruskal"}),
    ("tracegym/ARC-v0", {"dataset": "procedural/flip", "mode": "answer"}),
])
def test_encode_observation__fits_the_token_spec(env_id, options):
    task = task_of_env(env_id)
    io = agent_io(task)
    obs, _ = gym.make(env_id, **options).reset(seed=0)
    tokens = io.encode_observation(obs)
    spec = io.token_spec(options.get("size"))
    assert tokens.dtype == np.int64 and tokens.shape == (spec["seq_len"],)
    assert tokens[0] > 0 and tokens.min() >= 0 and tokens.max() < spec["vocab_size"]  # 0: pad


def test_arc_agent_io__a_side_10_canvas():
    from tracegym.envs.arc.rules import crop, pad

    io = agent_io("arc")
    assert io.token_spec(10) == {"vocab_size": 12, "seq_len": 100}
    assert io.token_spec() == {"vocab_size": 12, "seq_len": 900}
    obs, _ = gym.make("tracegym/ARC-v0", dataset="procedural/flip", mode="answer").reset(seed=2)
    grid = crop(obs["test_input"])
    tokens = io.encode_observation(obs, size=10)
    assert tokens.dtype == np.int64 and tokens.shape == (100,)
    assert np.array_equal(io.decode_answer(tokens), grid)  # decoded at the tokens' own length
    assert io.decode_answer(tokens[:99]) is None  # no square canvas: no answer
    assert io.canvas_side(100) == 10 and io.canvas_side(None) == 30
    for seq_len in (99, 961, 0):
        with pytest.raises(TracegymError, match=f"has seq_len {seq_len}$"):
            io.canvas_side(seq_len)
    with pytest.raises(TracegymError, match="size: the test input is a 4x3 grid, larger than "
                                            r"the model's 2x2 canvas \(size=2\)"):
        io.encode_observation({"test_input": pad(np.zeros((4, 3), np.int8))}, size=2)
    with pytest.raises(TracegymError, match="size must be in 1..30, got 31"):
        io.encode_observation(obs, size=31)


# -- a fifth env: one folder, nothing else edited -----------------------------------------------

TOY = {
    "__init__.py": '''
        """Toy: answer a row of digits reversed (a test's fifth env)."""
        from gymnasium.envs.registration import register

        register(id="tracegym/ToyReverse-v0", entry_point="tracegym.envs.toyreverse.env:ToyEnv")
    ''',
    "env.py": '''
        import gymnasium as gym
        import numpy as np
        from gymnasium import spaces


        class ToyEnv(gym.Env):
            """Observe n digits 1..9; answer them reversed (whole, or one digit per step)."""

            def __init__(self, size=5, mode="answer"):
                self.size, self.mode = size, mode
                self.observation_space = spaces.Dict(
                    {"digits": spaces.Box(1, 9, (size,), np.int8)})
                self.action_space = spaces.Box(1, 9, (size,), np.int8) if mode == "answer" \\
                    else spaces.Discrete(9)

            def reset(self, *, seed=None, options=None):
                super().reset(seed=seed)
                self.digits = self.np_random.integers(1, 10, self.size).astype(np.int8)
                self.written = []
                return {"digits": self.digits.copy()}, {}

            def step(self, action):
                target = self.digits[::-1]
                if self.mode == "answer":
                    right = bool((np.asarray(action) == target).all())
                    return {"digits": self.digits.copy()}, float(right), True, False, {}
                self.written.append(int(action) + 1)
                done = len(self.written) == self.size
                right = done and self.written == target.tolist()
                return {"digits": self.digits.copy()}, float(right), done, False, {}
    ''',
    "agent_io.py": '''
        """Toy for a sequence model: digit d is token d (0 pad), answered reversed."""
        import numpy as np

        MODES = ("answer", "step")


        def token_spec(size=None):
            return {"vocab_size": 10, "seq_len": 5 if size is None else size}


        def encode_observation(obs):
            return obs["digits"].astype(np.int64)


        def decode_answer(pred, obs):
            return np.clip(pred, 1, 9).astype(np.int8)


        def play_answer(env, obs, info, answer, mode):
            if mode == "answer":
                return env.step(answer)[1] > 0
            for digit in answer:
                _, reward, terminated, _, _ = env.step(int(digit) - 1)
            return reward > 0
    ''',
}


@pytest.fixture
def toy_env(tmp_path):
    """The toy package on ``tracegym.envs``' path, as if its folder were added to envs/."""
    folder = tmp_path / "toyreverse"
    folder.mkdir()
    for name, text in TOY.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    tracegym.envs.__path__.append(str(tmp_path))  # the list the import system reads
    try:
        yield "tracegym/ToyReverse-v0"
    finally:
        tracegym.envs.__path__.remove(str(tmp_path))
        gym.registry.pop("tracegym/ToyReverse-v0", None)
        for module in [m for m in sys.modules if m.startswith("tracegym.envs.toyreverse")]:
            del sys.modules[module]


@pytest.mark.parametrize("mode", ["answer", "step"])
def test_fifth_env__evaluated_through_its_own_agent_io(toy_env, mode):
    assert "toyreverse" in subpackages("tracegym.envs") and "toyreverse" in task_packages()
    right = evaluate_in_env(StandIn(lambda row: row[::-1].copy()), toy_env, episodes=7,
                            mode=mode, env_options={"size": 4}, batch_size=3)
    assert right == {"env": toy_env, "mode": mode, "episodes": 7, "seed": 0, "solved": 7,
                     "solve_rate": 1.0}
    echo = evaluate_in_env(StandIn(lambda row: row), toy_env, episodes=7, mode=mode, seed=1)
    assert echo["solved"] < 7  # a palindrome of 5 random digits is rare, not impossible


def test_fifth_env__its_token_spec_reaches_a_reasoner(toy_env):
    from tracegym.agents.reasoners import build_policy

    spec = task_spec("toyreverse6")  # built by the training layer from the env's module
    assert (spec.vocab_size, spec.seq_len) == (10, 6)
    torch.manual_seed(0)
    model = build_policy("trm", "mlp_mixer", spec, dim=16, depth=1, heads=2, N_sup=1,
                         H_cycles=1, L_cycles=1, multiple_of=16)
    result = evaluate_in_env(model, toy_env, episodes=4, env_options={"size": 6})
    assert 0.0 <= result["solve_rate"] <= 1.0 and model.task is spec
    with pytest.raises(TracegymError, match="observations give 5 tokens but the model was "
                                            "trained on seq_len 6"):
        evaluate_in_env(model, toy_env, episodes=1)  # the env's default size
