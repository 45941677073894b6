"""Evaluation in the environments: oracle and random stand-in policies, ARC voting, the eval CLI."""

import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from tracegym.cli import main
from tracegym.envs.arc import tokens as arc_tokens
from tracegym.envs.arc.agent_io import eval_augmentations
from tracegym.envs.arc.augment import ArcAugmentation
from tracegym.envs.arc.data import ArcTask
from tracegym.envs.sudoku import tokens as sudoku_tokens
from tracegym.grid import dihedral
from tracegym.training.evaluate import evaluate_in_env

torch.set_num_threads(1)


class StandIn(nn.Module):
    """A policy whose ``solve`` maps each input row (numpy) with ``answer``."""

    def __init__(self, answer):
        super().__init__()
        self.answer = answer
        self.seen_ids = []

    def solve(self, inputs, puzzle_identifiers=None):
        if puzzle_identifiers is not None:
            self.seen_ids.extend(puzzle_identifiers.tolist())
        rows = [self.answer(row) for row in inputs.numpy()]
        return torch.from_numpy(np.stack(rows).astype(np.int64))


def sudoku_oracle(n):
    from tracegym.envs.sudoku import solve

    return StandIn(lambda row: sudoku_tokens.encode(solve(sudoku_tokens.decode(row, n))))


def maze_oracle():
    from tracegym.envs.maze.solver import shortest_path

    return StandIn(lambda row: shortest_path(row.reshape(11, 11).astype(np.int8))[1].reshape(-1))


SUDOKU4 = {"size": 4, "difficulty": "easy"}


@pytest.mark.parametrize("mode", ["answer", "step"])
def test_evaluate__sudoku_oracle_solves_everything(mode):
    result = evaluate_in_env(sudoku_oracle(4), "tracegym/Sudoku-v0", episodes=12, seed=3,
                             mode=mode, env_options=SUDOKU4, batch_size=5)
    assert result == {"env": "tracegym/Sudoku-v0", "mode": mode, "episodes": 12, "seed": 3,
                      "solved": 12, "solve_rate": 1.0}


@pytest.mark.parametrize("mode", ["answer", "step"])
def test_evaluate__sudoku_random_policy_solves_almost_nothing(mode):
    rng = np.random.default_rng(0)
    policy = StandIn(lambda row: rng.integers(2, 6, size=row.shape))  # random digits 1..4
    result = evaluate_in_env(policy, "tracegym/Sudoku-v0", episodes=20, mode=mode,
                             env_options={**SUDOKU4, "difficulty": "hard"})
    assert result["solve_rate"] <= 0.1


@pytest.mark.parametrize("mode", ["answer", "step"])
def test_evaluate__maze_oracle_solves_everything(mode):
    result = evaluate_in_env(maze_oracle(), "tracegym/Maze-v0", episodes=6, mode=mode,
                             env_options={"size": 11, "kind": "kruskal"})
    assert result["solve_rate"] == 1.0


def test_evaluate__maze_echo_policy_solves_nothing():
    result = evaluate_in_env(StandIn(lambda row: row), "tracegym/Maze-v0", episodes=4,
                             mode="step", env_options={"size": 11, "kind": "kruskal"})
    assert result["solve_rate"] == 0.0


def test_evaluate__same_seed_same_result():
    rng_a, rng_b = np.random.default_rng(1), np.random.default_rng(1)
    runs = [evaluate_in_env(StandIn(lambda row, r=r: np.where(row == 1, r.integers(2, 6, row.shape),
                                                              row)),
                            "tracegym/Sudoku-v0", episodes=30, seed=9, env_options=SUDOKU4)
            for r in (rng_a, rng_b)]
    assert runs[0] == runs[1]


# -- ARC: pass@2 with augmentation voting -------------------------------------------------------

def rot180_task(i: int) -> ArcTask:
    """A task whose rule (turn the grid half way) commutes with every augmentation."""
    rng = np.random.default_rng(i)
    pairs = []
    for _ in range(3):
        grid = rng.integers(0, 10, size=(rng.integers(2, 6), rng.integers(2, 6))).astype(np.int8)
        pairs.append((grid, dihedral(grid, 2).copy()))
    return ArcTask(f"task{i}", tuple(pairs[:2]), tuple(pairs[2:]))


TASKS = [rot180_task(i) for i in range(4)]


def arc_policy(wrong_first: int = 0):
    """Answers each augmented copy by the rule; the first ``wrong_first`` rows of every batch get
    a wrong (constant) grid, as a model that fails on some copies."""
    def solve(inputs, puzzle_identifiers=None):
        if puzzle_identifiers is not None:
            policy.seen_ids.extend(puzzle_identifiers.tolist())
        out = []
        for i, row in enumerate(inputs.numpy()):
            grid = arc_tokens.decode(row)
            answer = np.zeros_like(grid) if i < wrong_first else dihedral(grid, 2)
            out.append(arc_tokens.encode(answer))
        return torch.from_numpy(np.stack(out).astype(np.int64))

    policy = StandIn(None)
    policy.solve = solve
    return policy


@pytest.mark.parametrize("wrong_first, expected", [(0, 1.0), (3, 1.0), (9, 0.0)])
def test_evaluate__arc_pass_at_2_votes_over_augmentations(wrong_first, expected):
    # 1 identity + 8 copies: with 3 wrong answers the right one still wins the vote; with all 9
    # wrong the only answer (zeros) is submitted and fails.
    result = evaluate_in_env(arc_policy(wrong_first), "tracegym/ARC-v0", episodes=4,
                             env_options={"dataset": TASKS}, augmentations=8)
    assert result["solve_rate"] == expected and result["metric"] == "pass@2"
    assert result["pass@1"] == expected


def test_evaluate__arc_second_attempt_counts():
    # 2 of 3 answers wrong but different from each other: the right one ties and is 2nd or 1st
    def solve(inputs, puzzle_identifiers=None):
        out = []
        for i, row in enumerate(inputs.numpy()):
            grid = arc_tokens.decode(row)
            answer = dihedral(grid, 2) if i == 2 else np.full_like(grid, i)
            out.append(arc_tokens.encode(answer))
        return torch.from_numpy(np.stack(out).astype(np.int64))

    policy = StandIn(None)
    policy.solve = solve
    result = evaluate_in_env(policy, "tracegym/ARC-v0", episodes=3,
                             env_options={"dataset": TASKS}, augmentations=2)
    assert result["solve_rate"] == 0.0  # the 2 attempts are the first two tied answers
    flipped = arc_policy(wrong_first=1)
    result = evaluate_in_env(flipped, "tracegym/ARC-v0", episodes=3,
                             env_options={"dataset": TASKS}, augmentations=1)
    assert result["solve_rate"] == 1.0 and result["pass@1"] == 0.0  # right on attempt 2


def test_arc_eval_augmentations__from_dataset_identifiers():
    names = {"<blank>": 0, "task0": 1, "task0|||t3|||0213456789": 2, "task1": 3,
             "task0|||t5|||0987654321": 4}
    augs = eval_augmentations("task0", names, 8, np.random.default_rng(0))
    assert [ident for _, ident in augs] == [1, 2, 4]
    assert augs[1][0] == ArcAugmentation(3, (0, 2, 1, 3, 4, 5, 6, 7, 8, 9))
    assert len(eval_augmentations("task0", names, 1, np.random.default_rng(0))) == 2
    unknown = eval_augmentations("other", names, 5, np.random.default_rng(0))
    assert len(unknown) == 6 and {ident for _, ident in unknown} == {0}


def test_evaluate__arc_uses_identifiers_per_copy():
    policy = arc_policy()
    names = {"task0": 7, "task0|||t1|||0123456789": 8}
    evaluate_in_env(policy, "tracegym/ARC-v0", episodes=1, seed=0,
                    env_options={"dataset": TASKS[:1]}, identifiers=names)
    assert policy.seen_ids == [7, 8]


@pytest.mark.parametrize("kwargs, message", [
    ({"env_id": "CartPole-v1"}, "env: evaluation supports"),
    ({"mode": "walk"}, "mode must be one of ['answer', 'step'], got 'walk'"),
    ({"episodes": 0}, "episodes must be >= 1, got 0"),
    ({"env_id": "tracegym/ARC-v0", "mode": "step"},
     "mode: tracegym/ARC-v0 is evaluated in answer mode, got 'step'"),
])
def test_evaluate__bad_arguments(kwargs, message):
    args = {"env_id": "tracegym/Sudoku-v0", **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        evaluate_in_env(sudoku_oracle(4), **args)


# -- the eval CLI on a real (tiny, untrained) checkpoint ----------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("eval"), ema=0.9)


def tiny_checkpoint(root, ema: float):
    from tracegym.datasets.sudoku import build_sudoku_dataset
    from tracegym.training.config import from_dict
    from tracegym.training.trainer import Trainer

    build_sudoku_dataset(root / "data", size=4, difficulty="easy", train=16, test=4,
                         progress=False)
    cfg = from_dict(dict(task="sudoku4", data=str(root / "data"), reasoner="trm",
                         backbone="mlp_mixer", batch_size=8, max_steps=2, ema=ema,
                         progress=False, out=str(root / "run"),
                         model={"dim": 16, "depth": 1, "heads": 2, "N_sup": 2, "H_cycles": 1,
                                "L_cycles": 1, "multiple_of": 16}))
    Trainer(cfg).train()
    return root / "run" / "checkpoint.safetensors"


def test_cli_eval__reports_the_weights_actually_used(tmp_path, capsys):
    # trained without EMA: asking for EMA weights (the default) gets the raw ones, and says so
    no_ema = tiny_checkpoint(tmp_path, ema=0.0)
    argv = ["eval", "--checkpoint", str(no_ema), "--env", "tracegym/Sudoku-v0", "--episodes",
            "2", "size=4", "difficulty=easy"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["weights"] == "model"


def test_cli_eval__mode_as_env_option_points_to_the_flag(checkpoint, capsys):
    argv = ["eval", "--checkpoint", str(checkpoint), "--env", "tracegym/Sudoku-v0",
            "--episodes", "2", "size=4", "mode=answer"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err == "tracegym: error: mode=answer is not an env option: use --mode answer\n"


@pytest.mark.parametrize("mode", ["answer", "step"])
def test_cli_eval__prints_json(checkpoint, mode, capsys):
    argv = ["eval", "--checkpoint", str(checkpoint), "--env", "tracegym/Sudoku-v0",
            "--episodes", "3", "--mode", mode, "size=4", "difficulty=easy"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 3 and result["mode"] == mode and result["step"] == 2
    assert 0.0 <= result["solve_rate"] <= 1.0 and result["weights"] == "ema"


@pytest.mark.parametrize("extra, message", [
    ([], "tracegym: error: env: observations give 81 tokens but the model was trained on "
         "seq_len 16"),
    (["size=4", "colour=red"], "tracegym: error: env options ['colour', 'size']: "
                               "SudokuEnv.__init__() got an unexpected keyword argument 'colour'"),
    (["size"], "tracegym: error: env option: expected key=value, got 'size'"),
])
def test_cli_eval__bad_input_is_one_line_and_exit_2(checkpoint, extra, message, capsys):
    argv = ["eval", "--checkpoint", str(checkpoint), "--env", "tracegym/Sudoku-v0",
            "--episodes", "2", *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_cli_eval__missing_or_foreign_checkpoint_exits_2(tmp_path, capsys):
    assert main(["eval", "--checkpoint", str(tmp_path / "x.safetensors"), "--env",
                 "tracegym/Sudoku-v0"]) == 2
    assert capsys.readouterr().err.startswith("tracegym: error: checkpoint: no such file")
    (tmp_path / "junk.safetensors").write_bytes(b"not a checkpoint")
    assert main(["eval", "--checkpoint", str(tmp_path / "junk.safetensors"), "--env",
                 "tracegym/Sudoku-v0"]) == 2
    assert "is not a safetensors file" in capsys.readouterr().err
