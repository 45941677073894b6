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
