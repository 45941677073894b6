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


# -- the papers' metrics (issue 18 item 10) ------------------------------------------------------

def tiny_reasoner(name: str, seq_len: int = 16, vocab: int = 6, identifiers: int = 1):
    from tracegym.agents.reasoners import TaskSpec, build_policy

    task = TaskSpec(name="t", vocab_size=vocab, seq_len=seq_len,
                    num_puzzle_identifiers=identifiers)
    steps = {"trm": {"N_sup": 3, "H_cycles": 2, "L_cycles": 1, "depth": 1},
             "hrm": {"halt_max_steps": 3, "H_layers": 1, "L_layers": 1}}[name]
    torch.manual_seed(0)
    policy = build_policy(name, "transformer", task, dim=16, heads=2, puzzle_emb_len=2, **steps)
    for p in policy.parameters():  # away from the zero-initialised Q head: q_halt varies by row
        p.data.add_(0.3 * torch.randn_like(p))
    return policy.eval()


@pytest.mark.parametrize("name", ["trm", "hrm"])
def test_solve_with_confidence__same_answers_as_solve_and_a_q_halt_per_row(name):
    from tracegym.training.evaluate import solve_with_confidence

    policy = tiny_reasoner(name, identifiers=3)
    inputs = torch.randint(1, 6, (5, 16))
    ids = torch.tensor([0, 1, 2, 1, 0])
    pred, q_halt = solve_with_confidence(policy, inputs, ids)
    assert torch.equal(pred, policy.solve(inputs, ids))
    assert q_halt.shape == (5,) and q_halt.dtype == torch.float32
    assert torch.isfinite(q_halt).all() and q_halt.unique().numel() > 1
    # the last segment's halting logit: one more segment from the same carry differs
    x = policy.embed(*policy.check_inputs(inputs, ids))
    segment = policy.deep_recursion if name == "trm" else policy.segment
    carry = policy.initial_carry(5)
    for _ in range(policy.max_supervision_steps):
        carry, _, q = segment(x, carry)
    assert torch.allclose(q_halt, q if q.dim() == 1 else q[:, 0])


def test_solve_with_confidence__a_policy_without_halting_gives_none():
    from tracegym.training.evaluate import solve_with_confidence

    pred, q_halt = solve_with_confidence(StandIn(lambda row: row + 1), torch.ones(2, 4, dtype=int))
    assert q_halt is None and pred.tolist() == [[2] * 4] * 2


@pytest.fixture(scope="module")
def sudoku_data(tmp_path_factory):
    from tracegym.datasets.sudoku import build_sudoku_dataset

    root = tmp_path_factory.mktemp("split") / "data"
    build_sudoku_dataset(root, size=4, difficulty="easy", train=8, test=6, progress=False)
    return root


def lookup_policy(data, split="test", wrong=()):
    """Answers each input of ``data``'s split with its label (rows whose position within a
    batch is in ``wrong``: all pad)."""
    from tracegym.datasets.writer import read_split

    _, arrays = read_split(data, split)
    table = {row.astype(np.int64).tobytes(): label
             for row, label in zip(arrays["inputs"], arrays["labels"])}
    policy = StandIn(None)
    policy.solve = lambda inputs, ids=None: torch.from_numpy(np.stack(
        [np.zeros_like(table[row.tobytes()]) if i in wrong else table[row.tobytes()]
         for i, row in enumerate(inputs.numpy())]).astype(np.int64))
    return policy


def test_evaluate_split__exact_and_token_accuracy_of_the_fixed_test_split(sudoku_data):
    from tracegym.training.evaluate import evaluate_split

    result = evaluate_split(lookup_policy(sudoku_data), sudoku_data, batch_size=4)
    assert result == {"data": str(sudoku_data), "split": "test", "examples": 6,
                      "exact_acc": 1.0, "token_acc": 1.0}
    echo = evaluate_split(StandIn(lambda row: row), sudoku_data)  # the clues only
    assert echo["exact_acc"] == 0.0 and 0.0 < echo["token_acc"] < 1.0
    wrong = evaluate_split(lookup_policy(sudoku_data, wrong={0}), sudoku_data, batch_size=4)
    assert wrong["exact_acc"] == pytest.approx(4 / 6)  # row 0 of both batches is wrong
    assert evaluate_split(lookup_policy(sudoku_data), sudoku_data, limit=2)["examples"] == 2


def test_evaluate_in_env__reset_options_play_each_puzzle_once(monkeypatch, sudoku_data):
    from tracegym.datasets.writer import read_split
    from tracegym.training import evaluate

    seen = []
    make = evaluate._make

    def spying_make(env_id, mode, options):
        env = make(env_id, mode, options)
        reset = env.reset
        env.reset = lambda **kw: (seen.append(kw["options"]), reset(**kw))[1]
        return env

    monkeypatch.setattr(evaluate, "_make", spying_make)
    _, arrays = read_split(sudoku_data, "test")  # the fixed test split's puzzles, in order
    puzzles = [{"puzzle": sudoku_tokens.decode(row, 4)} for row in arrays["inputs"][:5]]
    policy = sudoku_oracle(4)
    asked = []
    solve = policy.solve
    policy.solve = lambda inputs, ids=None: (asked.extend(inputs.numpy()), solve(inputs, ids))[1]
    result = evaluate_in_env(policy, "tracegym/Sudoku-v0", env_options=SUDOKU4,
                             reset_options=puzzles, batch_size=2)
    assert result["episodes"] == 5 and result["solve_rate"] == 1.0
    assert [id(o) for o in seen] == [id(o) for o in puzzles]
    assert np.array_equal(np.stack(asked), arrays["inputs"][:5])
    with pytest.raises(ValueError, match="episodes: 4 episodes but 5 reset_options"):
        evaluate_in_env(sudoku_oracle(4), "tracegym/Sudoku-v0", env_options=SUDOKU4,
                        reset_options=puzzles, episodes=4)


def maze_label_tokens(obs, info):
    """The hook proposed for envs/maze/agent_io.py: the label the dataset builder writes."""
    from tracegym.envs.maze import tokens
    from tracegym.envs.maze.solver import solve_batch

    return tokens.encode(solve_batch(obs["grid"][None])[0][0]).astype(np.int64)


def test_evaluate__maze_exact_match_with_the_label_beside_any_shortest_path(monkeypatch):
    from tracegym.envs.maze import agent_io as maze_io
    from tracegym.envs.maze.solver import shortest_path

    monkeypatch.setattr(maze_io, "label_tokens", maze_label_tokens, raising=False)
    options = {"size": 11, "kind": "kruskal"}
    oracle = evaluate_in_env(maze_oracle(), "tracegym/Maze-v0", episodes=4, env_options=options)
    assert oracle["solve_rate"] == 1.0 and oracle["exact_match"] == 1.0

    def other_path(row):  # the solver's path on the transposed maze, transposed back
        grid = row.reshape(11, 11).astype(np.int8)
        return shortest_path(grid.T)[1].T.reshape(-1)

    # kruskal mazes have one path between two cells: a shortest path is the label
    other = evaluate_in_env(StandIn(other_path), "tracegym/Maze-v0", episodes=4,
                            env_options=options)
    assert other["exact_match"] == other["solve_rate"] == 1.0
    open_room = np.full((5, 5), 2, np.int8)
    open_room[0, 0], open_room[4, 4] = 3, 4  # many shortest paths: the transposed one differs
    rooms = evaluate_in_env(StandIn(lambda row: shortest_path(
        row.reshape(5, 5).astype(np.int8).T)[1].T.reshape(-1)), "tracegym/Maze-v0",
        episodes=2, env_options={"mazes": [open_room]})
    assert rooms["solve_rate"] == 1.0 and rooms["exact_match"] == 0.0


# -- ARC: every test pair once; TRM's voting on the dataset's test split --------------------------

def two_pair_task(i: int) -> ArcTask:
    task = rot180_task(10 + i)
    extra = rot180_task(20 + i).test
    return ArcTask(task.task_id, task.train, task.test + extra)


WALK_TASKS = TASKS[:3] + [two_pair_task(0)]  # 5 test pairs


@pytest.mark.parametrize("tasks", [WALK_TASKS, [*WALK_TASKS[:3], ArcTask(
    "task0", WALK_TASKS[3].train, WALK_TASKS[3].test)]], ids=["unique", "same-id"])
def test_evaluate_arc_env__every_test_pair_exactly_once(tasks):
    from tracegym.training.arc_eval import evaluate_arc_env

    policy = arc_policy()
    asked = []
    solve = policy.solve
    policy.solve = lambda inputs, ids=None: (asked.append(arc_tokens.decode(inputs[0].numpy())),
                                             solve(inputs, ids))[1]
    result = evaluate_arc_env(policy, env_options={"dataset": tasks}, augmentations=3)
    expected = [x for t in tasks for x, _ in t.test]
    assert len(asked) == len(expected) == 5 == result["episodes"]
    assert all(np.array_equal(a, x) for a, x in zip(asked, expected))  # in order, no repeat
    assert result["solve_rate"] == result["pass@1"] == result["pass@2"] == 1.0
    assert result["tasks"] == 4 and result["ranking"] == "votes, first seen"


def test_evaluate_arc_env__pass_at_k_is_per_task():
    from tracegym.training.arc_eval import evaluate_arc_env

    wrong_input = WALK_TASKS[3].test[1][0]  # the 2-pair task fails its second pair

    def solve(inputs, puzzle_identifiers=None):
        grids = [arc_tokens.decode(row) for row in inputs.numpy()]
        wrong = np.array_equal(grids[0], wrong_input)
        return torch.from_numpy(np.stack([arc_tokens.encode(
            np.zeros_like(g) if wrong else dihedral(g, 2)) for g in grids]).astype(np.int64))

    policy = StandIn(None)
    policy.solve = solve
    result = evaluate_arc_env(policy, env_options={"dataset": WALK_TASKS}, augmentations=2)
    assert result["solve_rate"] == pytest.approx(4 / 5)  # per pair
    assert result["pass@2"] == pytest.approx((1 + 1 + 1 + 0.5) / 4)  # per task, as TRM
    assert result["per_task"][WALK_TASKS[3].task_id] == {"pass@1": 0.5, "pass@2": 0.5}


def test_evaluate_arc_env__generated_tasks_cannot_be_walked():
    from tracegym.training.arc_eval import evaluate_arc_env, walkable

    assert not walkable("procedural/flip") and walkable("arc-agi-1/evaluation")
    with pytest.raises(ValueError, match="generated tasks have no fixed list to walk"):
        evaluate_arc_env(arc_policy(), env_options={"dataset": "procedural/flip"})


@pytest.fixture(scope="module")
def arc_data(tmp_path_factory):
    from tracegym.datasets.arc import build_arc_dataset

    root = tmp_path_factory.mktemp("arc") / "data"
    build_arc_dataset(root, arc_set="procedural/flip", augment=3, tasks=(3, 3), progress=False)
    return root


class Confident(StandIn):
    """A lookup policy with halting logits: ``q(row index within the batch)``."""

    def __init__(self, data, q, wrong=()):
        super().__init__(None)
        self.inner, self.q = lookup_policy(data, wrong=wrong), q

    def solve(self, inputs, puzzle_identifiers=None):
        return self.inner.solve(inputs)

    def solve_with_confidence(self, inputs, puzzle_identifiers=None):
        return self.solve(inputs), torch.tensor([self.q(i) for i in range(len(inputs))])


def test_evaluate_arc_split__trm_voting_over_every_copy(arc_data):
    from tracegym.training.arc_eval import evaluate_arc_split

    result = evaluate_arc_split(lookup_policy(arc_data), arc_data, batch_size=5)
    assert (result["examples"], result["tasks"], result["test_pairs"]) == (12, 3, 3)
    assert result["pass@1"] == result["pass@2"] == result["exact_acc"] == 1.0
    assert result["unmatched_predictions"] == 0 and result["predictions"] == 12
    assert result["ranking"] == "votes, first seen"
    # batches of 4 = one task's 4 copies: 2 copies wrong (all-pad answers crop to one empty
    # grid), 2 right: a 2-2 tie, broken by confidence
    right_more_sure = Confident(arc_data, q=lambda i: 2.0 if i >= 2 else -2.0, wrong={0, 1})
    result = evaluate_arc_split(right_more_sure, arc_data, batch_size=4)
    assert result["exact_acc"] == 0.5 and result["pass@1"] == 1.0
    assert result["ranking"] == "votes, mean sigmoid(q_halt)"
    wrong_more_sure = Confident(arc_data, q=lambda i: 2.0 if i < 2 else -2.0, wrong={0, 1})
    result = evaluate_arc_split(wrong_more_sure, arc_data, batch_size=4)
    assert result["pass@1"] == 0.0 and result["pass@2"] == 1.0


def test_evaluate_arc_split__needs_test_puzzles_json(arc_data, tmp_path):
    import shutil

    from tracegym.training.arc_eval import evaluate_arc_split

    copy = tmp_path / "data"
    shutil.copytree(arc_data, copy)
    (copy / "test_puzzles.json").unlink()
    with pytest.raises(ValueError, match="test_puzzles.json' is missing"):
        evaluate_arc_split(lookup_policy(arc_data), copy)


# -- the eval CLI: --data ------------------------------------------------------------------------

def test_cli_eval__data_scores_the_test_split_beside_the_env(checkpoint, capsys):
    data = checkpoint.parent.parent / "data"
    argv = ["eval", "--checkpoint", str(checkpoint), "--data", str(data), "--env",
            "tracegym/Sudoku-v0", "--episodes", "2", "size=4", "difficulty=easy"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and 0.0 <= result["solve_rate"] <= 1.0
    split = result["test_split"]
    assert split["examples"] == 4 and {"exact_acc", "token_acc"} <= set(split)
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(data)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert "solve_rate" not in result and result["test_split"]["examples"] == 4


@pytest.mark.parametrize("extra, message", [
    ([], "tracegym: error: eval: give --env ID (play episodes), --data DIR"),
    (["--data", "d", "size=4"], "tracegym: error: env options ['size'] need --env"),
])
def test_cli_eval__needs_env_or_data(checkpoint, extra, message, capsys):
    assert main(["eval", "--checkpoint", str(checkpoint), *extra]) == 2
    assert capsys.readouterr().err.startswith(message)


def test_cli_eval__data_of_another_task_is_refused(checkpoint, arc_data, capsys):
    assert main(["eval", "--checkpoint", str(checkpoint), "--data", str(arc_data)]) == 2
    assert "holds arc data" in capsys.readouterr().err


def test_cli_eval__arc_checkpoint_split_and_env_walk(arc_data, tmp_path, capsys):
    from tracegym.envs.arc.data import save_task
    from tracegym.training.arc_eval import load_test_puzzles
    from tracegym.training.config import from_dict
    from tracegym.training.trainer import Trainer

    cfg = from_dict(dict(task="arc", data=str(arc_data), reasoner="trm", backbone="transformer",
                         batch_size=4, max_steps=1, progress=False, out=str(tmp_path / "run"),
                         model={"dim": 16, "depth": 1, "heads": 2, "N_sup": 2, "H_cycles": 1,
                                "L_cycles": 1, "puzzle_emb_len": 1}))
    Trainer(cfg).train()
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    for task in load_test_puzzles(arc_data):
        save_task(tasks / f"{task.task_id.replace('/', '_')}.json", task)
    argv = ["eval", "--checkpoint", str(tmp_path / "run"), "--data", str(arc_data), "--env",
            "tracegym/ARC-v0", "--per-task", f"dataset={tasks}"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == result["tasks"] == 3 and len(result["per_task"]) == 3
    split = result["test_split"]
    assert (split["tasks"], split["predictions"]) == (3, 12) and "pass@2" in split
    assert split["ranking"] == result["ranking"] == "votes, mean sigmoid(q_halt)"
    assert len(split["per_task"]) == 3


# -- ARC on a smaller token canvas (a dataset built with --side 10) -------------------------------

def arc_env_oracle(monkeypatch, env_options, seed, episodes, seq_len=100):
    """A policy with ``task.seq_len`` that answers every copy of an episode's test input with the
    copy of the true output (the env replayed for the outputs, the copies read off the ARC agent
    I/O's ``queries``); it checks that each input row is its copy of the test input."""
    from types import SimpleNamespace

    import gymnasium as gym

    from tracegym.envs.arc import agent_io

    env = gym.make("tracegym/ARC-v0", mode="answer", **env_options)
    truth = {}
    for i in range(episodes):
        env.reset(seed=seed + i)
        truth[env.unwrapped.test_input.tobytes()] = (env.unwrapped.test_input,
                                                     env.unwrapped.test_output)
    env.close()
    drawn = []
    queries = agent_io.queries

    def spy(obs, info, run):
        asked = queries(obs, info, run)
        drawn.append(asked[2])
        return asked

    monkeypatch.setattr(agent_io, "queries", spy)
    side = arc_tokens.side_of(seq_len)

    def solve(inputs, puzzle_identifiers=None):
        rows, augs = inputs.numpy(), drawn[-1]
        assert rows.shape == (len(augs), seq_len)
        x, y = truth[arc_tokens.decode(rows[0]).tobytes()]
        for row, aug in zip(rows, augs):
            assert np.array_equal(arc_tokens.decode(row), aug.apply(x))
        return torch.from_numpy(np.stack([arc_tokens.encode(aug.apply(y), side)
                                          for aug in augs]).astype(np.int64))

    policy = StandIn(None)
    policy.solve, policy.task, policy.drawn = solve, SimpleNamespace(seq_len=seq_len), drawn
    return policy


def test_evaluate__arc_side_10_model_in_the_env(monkeypatch):
    options = {"dataset": "procedural/flip"}
    policy = arc_env_oracle(monkeypatch, options, seed=4, episodes=6)
    result = evaluate_in_env(policy, "tracegym/ARC-v0", episodes=6, seed=4, mode="answer",
                             env_options=options, augmentations=8)
    assert result["solve_rate"] == result["pass@1"] == 1.0 and result["metric"] == "pass@2"
    assert len(policy.drawn) == 6 and all(len(augs) == 9 for augs in policy.drawn)
    # an answer shifted on the canvas still decodes there (decode finds the grid)
    solve = policy.solve
    policy.solve = lambda inputs, ids=None: torch.from_numpy(
        arc_tokens.translate(solve(inputs, ids).numpy(), 1, 1))
    result = evaluate_in_env(policy, "tracegym/ARC-v0", episodes=6, seed=4, mode="answer",
                             env_options=options, augmentations=8)
    assert result["solve_rate"] == 1.0


def test_evaluate__arc_side_10_model_refuses_larger_grids_and_bad_seq_len(monkeypatch):
    from types import SimpleNamespace

    from tracegym.errors import TracegymError

    policy = arc_policy()
    policy.task = SimpleNamespace(seq_len=100)
    with pytest.raises(TracegymError, match=r"^size: the test input of task 'big' is a 12x11 "
                                            r"grid, larger than the model's 10x10 canvas"):
        big = np.zeros((12, 11), np.int8)
        evaluate_in_env(policy, "tracegym/ARC-v0", episodes=1,
                        env_options={"dataset": [ArcTask("big", ((big, big),), ((big, big),))]})
    policy.task = SimpleNamespace(seq_len=99)
    with pytest.raises(TracegymError, match="side x side canvas .* has seq_len 99$"):
        evaluate_in_env(policy, "tracegym/ARC-v0", episodes=1, env_options={"dataset": TASKS})


def test_evaluate_arc_env__side_10_model_walks_every_test_pair():
    from types import SimpleNamespace

    from tracegym.training.arc_eval import evaluate_arc_env

    def solve(inputs, puzzle_identifiers=None):
        assert inputs.shape[1] == 100
        return torch.from_numpy(np.stack([arc_tokens.encode(dihedral(arc_tokens.decode(row), 2),
                                                            side=10)
                                          for row in inputs.numpy()]).astype(np.int64))

    policy = StandIn(None)
    policy.solve, policy.task = solve, SimpleNamespace(seq_len=100)
    result = evaluate_arc_env(policy, env_options={"dataset": WALK_TASKS}, augmentations=3)
    assert result["episodes"] == 5 and result["solve_rate"] == result["pass@2"] == 1.0


def test_cli_eval__arc_side_10_checkpoint_in_the_env_and_on_its_split(tmp_path, capsys):
    from tracegym.datasets.arc import build_arc_dataset
    from tracegym.training.config import from_dict
    from tracegym.training.trainer import Trainer

    data = tmp_path / "data"
    build_arc_dataset(data, arc_set="procedural/flip", augment=1, tasks=(3, 2), side=10,
                      progress=False)
    cfg = from_dict(dict(task="arc", data=str(data), reasoner="trm", backbone="transformer",
                         batch_size=4, max_steps=1, progress=False, out=str(tmp_path / "run"),
                         model={"dim": 16, "depth": 1, "heads": 2, "N_sup": 2, "H_cycles": 1,
                                "L_cycles": 1, "puzzle_emb_len": 1}))
    Trainer(cfg).train()
    argv = ["eval", "--checkpoint", str(tmp_path / "run"), "--data", str(data), "--env",
            "tracegym/ARC-v0", "--episodes", "2", "--augmentations", "2",
            "dataset=procedural/flip"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2 and 0.0 <= result["solve_rate"] <= 1.0
    assert result["test_split"]["predictions"] == 4 and "pass@2" in result["test_split"]
