"""configs/*.yaml: each loads through the real config loader, builds its model at a tiny size and
takes a training step, and agrees with its twin in NAMED_CONFIGS (the two cannot drift); a
misspelt or mistyped model key fails before training, naming the key and the value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from tracegym.agents.reasoners import NAMED_CONFIGS
from tracegym.errors import TracegymError
from tracegym.training.config import apply_overrides, load_config
from tracegym.training.tasks import task_spec
from tracegym.training.trainer import default_policy_factory, supervision_steps_per_batch

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))
# the paper widths are slow on a CPU: the model keys the test changes to build each one small
TINY = {"dim": 16, "heads": 2, "multiple_of": 16}
SEQ = 12  # tokens per tiny example (the task's vocabulary is kept)
# ours, sized for a CPU: no paper twin
CPU_RECIPES = {"trm-sudoku4-cpu", "trm-sudoku6-cpu", "trm-att-sudoku4-cpu", "trm-sudoku9-cpu"}


def test_configs__the_folder_is_found():
    assert len(CONFIGS) >= 4 and any(p.stem == "trm-sudoku4-cpu" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config__loads_builds_tiny_and_trains_a_step(path):
    cfg = load_config(path).validate()
    small = TINY if cfg.reasoner == "hrm" else {**TINY, "depth": 1}  # HRM sizes by H/L_layers
    tiny = apply_overrides(load_config(path), [f"model.{k}={v}" for k, v in small.items()])
    spec = {"name": cfg.task, "vocab_size": task_spec(cfg.task).vocab_size, "seq_len": SEQ,
            "num_puzzle_identifiers": 3, "pad_id": 0, "ignore_label_id": 0}
    torch.manual_seed(0)
    policy = default_policy_factory(spec, tiny)  # as the Trainer builds it
    assert policy.config["reasoner"] == cfg.reasoner and policy.backbone_name == cfg.backbone
    for key, value in cfg.model.items():  # every key the file sets reaches the model
        assert policy.config[key] == small.get(key, value), key
    assert supervision_steps_per_batch(policy) == policy.max_supervision_steps >= 1
    batch = {"inputs": torch.randint(1, spec["vocab_size"], (2, SEQ)),
             "labels": torch.randint(1, spec["vocab_size"], (2, SEQ)),
             "puzzle_identifiers": torch.tensor([0, 2])}
    out = next(policy.supervision_steps(batch))
    out.loss.backward()
    assert torch.isfinite(out.loss)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config__agrees_with_its_named_config(path):
    # The yaml files add the training recipe (optimizer, schedule, steps); the model they train
    # is NAMED_CONFIGS[<file name>]. The yaml names the env task (the dataset gives the size),
    # the named config a task name with its size where it has one (sudoku4 is a 4x4 sudoku).
    assert path.stem in NAMED_CONFIGS, f"configs/{path.name} has no NAMED_CONFIGS entry"
    named = dict(NAMED_CONFIGS[path.stem])
    cfg = load_config(path)
    assert named.pop("task").rstrip("0123456789") == cfg.task
    assert named == {"reasoner": cfg.reasoner, "backbone": cfg.backbone, "loss": cfg.loss,
                     **cfg.model}


@pytest.mark.parametrize(("override", "message"), [
    ("model.H_cyles=2", "unknown config key(s) ['H_cyles'] for reasoner 'trm' ('H_cyles': did "
                        "you mean 'H_cycles'?)"),
    ("model.N_sup=four", "N_sup must be an int >= 1, got N_sup='four'"),
    ("model.expansion=[4]", "expansion must be a number, got expansion=[4]"),
])
def test_config__a_bad_model_key_names_the_key_and_value(override, message):
    cfg = apply_overrides(load_config(CONFIGS[0].parent / "trm-sudoku4-cpu.yaml"), [override])
    spec = {"name": "sudoku", "vocab_size": 6, "seq_len": 16, "num_puzzle_identifiers": 1,
            "pad_id": 0, "ignore_label_id": 0}
    with pytest.raises(TracegymError, match=re.escape(message)):
        default_policy_factory(spec, cfg)  # as the Trainer builds it, before any step


# The published commands, value by value (issue 18 item 6). TRM: SamsungSAILMontreal/
# TinyRecursiveModels README.md commands over config/cfg_pretrain.yaml and config/arch/trm.yaml;
# HRM: sapientinc/HRM README.md commands over config/cfg_pretrain.yaml and config/arch/hrm_v1.yaml.
# Both count steps as int(epochs x total_groups x mean_puzzle_examples / global_batch_size), one
# supervision step each (pretrain.py), and evaluate every eval_interval epochs. Ours derives the
# steps from the same epochs and the dataset (TrainOrder.batches_for, checked below); eval_every
# is in steps. ARC: 960 groups (training, evaluation, ConceptARC) x 4.15 mean examples, as
# TRM's build gives them.
def _steps(epochs, groups, mean_examples=1.0, batch=768):
    return int(epochs * groups * mean_examples / batch)


_TRAIN = dict(optimizer="adam_atan2", loss="stablemax", lr=1e-4, betas=(0.9, 0.95),
              warmup_steps=2000, min_lr_ratio=1.0, grad_clip=0.0, batch_size=768,
              sampler="groups", act_flow="carry", max_steps=None)
_TRM_MODEL = {"model.dim": 512, "model.depth": 2, "model.heads": 8, "model.expansion": 4.0,
              "model.puzzle_emb_len": 16, "model.N_sup": 16, "model.halt_exploration_prob": 0.1,
              "model.norm": "post", "model.norm_gain": False, "model.init": "lecun_normal"}
_HRM_MODEL = {"model.dim": 512, "model.heads": 8, "model.expansion": 4.0, "model.H_cycles": 2,
              "model.L_cycles": 2, "model.H_layers": 4, "model.L_layers": 4,
              "model.halt_max_steps": 16, "model.halt_exploration_prob": 0.1,
              "model.puzzle_emb_len": 1, "model.norm": "post", "model.norm_gain": False,
              "model.init": "lecun_normal"}
_SMALL_TASK = dict(puzzle_emb_lr=1e-4, weight_decay=1.0, puzzle_emb_weight_decay=1.0)
_ARC = dict(puzzle_emb_lr=1e-2, weight_decay=0.1, puzzle_emb_weight_decay=0.1)
PAPER = {
    "trm-sudoku-extreme": {**_TRAIN, **_TRM_MODEL, **_SMALL_TASK, "reasoner": "trm",
                           "backbone": "mlp_mixer", "model.H_cycles": 3, "model.L_cycles": 6,
                           "ema": 0.999, "epochs": 50_000,
                           "eval_every": _steps(5_000, 1000)},
    "trm-att-sudoku-extreme": {**_TRAIN, **_TRM_MODEL, **_SMALL_TASK, "reasoner": "trm",
                               "backbone": "transformer", "model.H_cycles": 3,
                               "model.L_cycles": 6, "ema": 0.999,
                               "epochs": 50_000,
                               "eval_every": _steps(5_000, 1000)},
    "trm-maze-hard": {**_TRAIN, **_TRM_MODEL, **_SMALL_TASK, "reasoner": "trm",
                      "backbone": "transformer", "model.H_cycles": 3, "model.L_cycles": 4,
                      "ema": 0.999, "epochs": 50_000,
                      "eval_every": _steps(5_000, 1000)},
    "trm-arc-agi-1": {**_TRAIN, **_TRM_MODEL, **_ARC, "reasoner": "trm",
                      "backbone": "transformer", "model.H_cycles": 3, "model.L_cycles": 4,
                      "ema": 0.999, "epochs": 100_000,
                      "eval_every": _steps(10_000, 960, 4.15)},
    "hrm-sudoku-extreme": {**_TRAIN, **_HRM_MODEL, **_SMALL_TASK, "reasoner": "hrm",
                           "backbone": "transformer", "ema": 0.0,
                           "epochs": 20_000, "eval_every": _steps(2_000, 1000)},
    "hrm-maze-hard": {**_TRAIN, **_HRM_MODEL, **_SMALL_TASK, "reasoner": "hrm",
                      "backbone": "transformer", "ema": 0.0,
                      "epochs": 20_000, "eval_every": _steps(2_000, 1000)},
    "hrm-arc-agi-1": {**_TRAIN, **_HRM_MODEL, **_ARC, "reasoner": "hrm",
                      "backbone": "transformer", "ema": 0.0,
                      "epochs": 100_000,
                      "eval_every": _steps(10_000, 960, 4.15)},
}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_config__paper_configs_equal_the_published_commands(name):
    path = CONFIGS[0].parent / f"{name}.yaml"
    cfg = load_config(path).validate()
    got = {key: (cfg.model.get(key[len("model."):]) if key.startswith("model.")
                 else getattr(cfg, key)) for key in PAPER[name]}
    assert got == PAPER[name]
    assert cfg.amp in ("auto", "bf16")  # bf16 autocast on CUDA (TRM/HRM forward_dtype bfloat16)
    # positions: none for TRM's mlp_t (the mixer has none), RoPE for attention (the default)
    assert "rope" not in cfg.model and "rope_base" not in cfg.model
    # the one-line header comment holds the reference command
    assert path.read_text().startswith(f"# {name.split('-')[0].upper()}: ")


def test_config__every_paper_config_is_checked():
    assert {p.stem for p in CONFIGS} - CPU_RECIPES == set(PAPER)


@pytest.mark.parametrize("name", sorted(PAPER))
def test_config__steps_derived_from_epochs_are_the_papers(name):
    # the standard builds' index layout: Sudoku/Maze 1,000 groups of 1,001 one-example puzzles
    # (the original and 1,000 augmented copies; the maze has no copies); ARC 960 groups whose
    # puzzles average 4.15 examples (here 20 puzzles of 83 examples over 20 x 20 groups: 4.15)
    import numpy as np

    from tracegym.training.sampling import TrainOrder

    cfg = load_config(CONFIGS[0].parent / f"{name}.yaml")
    if "arc" in name:
        groups, puzzles_per_group, examples_per_puzzle = 960, 20, 4.15
        sizes = np.tile([4] * 17 + [5] * 3, groups)  # mean 4.15
    else:
        groups, puzzles_per_group = 1000, (1 if "maze" in name else 1001)
        sizes = np.ones(groups * puzzles_per_group, dtype=np.int64)
        examples_per_puzzle = 1.0
    puzzle_indices = np.concatenate([[0], np.cumsum(sizes)])
    group_indices = np.arange(groups + 1) * puzzles_per_group
    order = TrainOrder(int(puzzle_indices[-1]), puzzle_indices, group_indices,
                       sampler=cfg.sampler, batch_size=cfg.batch_size, seed=0)
    assert order.batches_for(cfg.epochs) == _steps(cfg.epochs, groups, examples_per_puzzle)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config__smoke_set_is_cpu_sized_or_absent(path):
    if path.stem not in PAPER:
        with pytest.raises(TracegymError, match="has no smoke: section"):
            load_config(path, smoke=True)
        return
    cfg = load_config(path, smoke=True).validate()
    assert (cfg.max_steps, cfg.device, cfg.compile, cfg.model["dim"]) == (50, "cpu", False, 32)
    full = load_config(path)
    assert (cfg.lr, cfg.optimizer, cfg.sampler, cfg.act_flow) == \
        (full.lr, full.optimizer, full.sampler, full.act_flow)  # the same recipe


def test_config__a_bad_smoke_key_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("lr: 1.0e-3\nsmoke:\n  max_step: 5\n")
    with pytest.raises(TracegymError, match="max_step.*did you mean 'max_steps'"):
        load_config(path)
