"""End to end on CPU: a tiny TRM trained by the Trainer solves held-out 4x4 Sudoku in the env."""

import pytest
import torch

from tracegym.datasets.sudoku import build_sudoku_dataset
from tracegym.training import TrainConfig, Trainer
from tracegym.training.evaluate import evaluate_in_env


@pytest.mark.slow
def test_trm__learns_4x4_sudoku_to_95_percent_in_the_env(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        build_sudoku_dataset(tmp_path / "data", size=4, difficulty="medium", train=2000, test=100,
                             seed=0, progress=False)
        cfg = TrainConfig(
            task="sudoku", data=str(tmp_path / "data"), reasoner="trm", backbone="mlp_mixer",
            model={"dim": 64, "depth": 2, "heads": 4, "H_cycles": 2, "L_cycles": 2, "N_sup": 4},
            max_steps=160, batch_size=128, lr=3e-3, warmup_steps=20, min_lr_ratio=0.1,
            optimizer="adamw", ema=0.0, eval_examples=100, log_every=50,
            out=str(tmp_path / "run"), progress=False, seed=0)
        trainer = Trainer(cfg)
        trainer.train()
        trainer.policy.eval()
        # episodes come from the env's own generator, seeds far from the dataset's streams
        result = evaluate_in_env(trainer.policy, "tracegym/Sudoku-v0", episodes=200,
                                 seed=1_000_000, env_options={"size": 4, "difficulty": "medium"})
        trainer.close()
    finally:
        torch.set_num_threads(threads)
    assert result["episodes"] == 200
    assert result["solve_rate"] >= 0.95, result
