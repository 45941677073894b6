"""Run directories, limits and interrupts of ``tracegym train`` (issue 16, items 7-11, 13, 17).

Every run here is a tiny TRM on a tiny 4x4 Sudoku set, a few CPU steps.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from conftest import TINY_TRM
from torch import nn

from tracegym.cli import main
from tracegym.training.checkpoint import Checkpoint
from tracegym.training.config import ConfigError, from_dict, load_config
from tracegym.training.trainer import Trainer, dataset_task

torch.set_num_threads(1)


def train_argv(data, out, *extra):
    return ["train", "--task", "sudoku", "--data", str(data), "--reasoner", "trm",
            "--backbone", "mlp_mixer", "--out", str(out), "max_steps=2", "batch_size=16",
            "progress=false", "eval_examples=4", "log_every=1",
            *(f"model.{k}={v}" for k, v in TINY_TRM.items()), *extra]


def tiny_config(data, out, **overrides):
    values = dict(task="sudoku", data=str(data), model=dict(TINY_TRM), batch_size=16, lr=3e-3,
                  warmup_steps=2, log_every=1, eval_examples=4, out=str(out), progress=False,
                  max_steps=6)
    values.update(overrides)
    return from_dict(values)


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("tracegym: error: ") and err.count("\n") == 1, err
    return err


@pytest.fixture
def no_model(monkeypatch):
    """Building a model fails the test: errors must come before the slow part."""
    def factory(spec, cfg):
        raise AssertionError("the model was built before the bad input was reported")

    monkeypatch.setattr("tracegym.training.trainer.default_policy_factory", factory)


# -- item 7: output locations and config files ------------------------------------------------

def test_train__out_is_a_file_is_one_line_before_the_model(sudoku4, tmp_path, capsys, no_model):
    (tmp_path / "afile").write_text("x")
    assert main(train_argv(sudoku4, tmp_path / "afile")) == 2
    assert "exists and is not a directory" in one_error_line(capsys)
    assert main(train_argv(sudoku4, tmp_path / "afile" / "sub")) == 2
    assert f"{tmp_path / 'afile' / 'sub'}" in one_error_line(capsys)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_train_and_plot__unwritable_out_names_the_users_path(sudoku4, tmp_path, capsys,
                                                             monkeypatch):
    # /proc refuses new entries even to root, unlike a read-only permission bit
    run = tmp_path / "run"
    assert main(train_argv(sudoku4, run)) == 0
    capsys.readouterr()
    with monkeypatch.context() as m:
        m.setattr("tracegym.training.trainer.default_policy_factory", None)  # not reached
        assert main(train_argv(sudoku4, "/proc/tracegym-run")) == 2
    assert "'/proc/tracegym-run'" in one_error_line(capsys)
    assert main(["plot", str(run), "--out", "/proc/tracegym.png"]) == 2
    err = one_error_line(capsys)
    assert "'/proc/tracegym.png'" in err and ".tmp-" not in err
    assert main(["plot", str(run), "--out", str(tmp_path / "figs" / "c.png")]) == 0
    assert (tmp_path / "figs" / "c.png").is_file()


@pytest.mark.parametrize("name, text, where", [
    ("bad.yaml", "task: sudoku\nmodel: [1, 2\nlr: 3\n", "line 3"),
    ("bad.json", '{"task": "sudoku",\n "lr": }\n', "line 2"),
    ("list.yaml", "- 1\n- 2\n", "must hold a mapping"),
    ("type.yaml", "lr: fast\n", "lr must be a number, got 'fast'"),
    ("model.yaml", "model: 64\n", "model must be a mapping, got 64"),
])
def test_train__malformed_config_names_file_and_line(name, text, where, tmp_path, capsys):
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(ConfigError, match=where):
        load_config(path)
    assert main(["train", "--config", str(path), "--data", str(tmp_path)]) == 2
    err = one_error_line(capsys)
    assert repr(str(path)) in err and where in err


# -- items 8 and 9: where a run writes --------------------------------------------------------

def test_train__existing_run_is_refused_unless_overwrite(sudoku4, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(train_argv(sudoku4, run, "max_steps=4")) == 0
    capsys.readouterr()
    before = (run / "metrics.jsonl").read_text()
    assert main(train_argv(sudoku4, run)) == 2
    err = one_error_line(capsys)
    assert "holds a run (checkpoint.safetensors, metrics.jsonl, config.json)" in err
    assert "--overwrite" in err and "--resume" in err
    assert (run / "metrics.jsonl").read_text() == before  # untouched
    (run / "curves.png").write_bytes(b"old")
    assert main([*train_argv(sudoku4, run), "--overwrite"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == 2
    assert Checkpoint(run).trainer_state["step"] == 2 and not (run / "curves.png").exists()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    assert main(train_argv(sudoku4, tmp_path / "other")) == 2
    assert "is not empty" in one_error_line(capsys)


def test_train__resume_writes_where_the_user_pointed(sudoku4, tmp_path, capsys):
    original, copy, moved = tmp_path / "trm4", tmp_path / "copy", tmp_path / "moved"
    assert main(train_argv(sudoku4, original)) == 0
    capsys.readouterr()
    shutil.copytree(original, copy)
    snapshot = {p.name: p.read_bytes() for p in original.iterdir()}
    assert main(["train", "--resume", str(copy), "max_steps=4"]) == 0
    assert json.loads(capsys.readouterr().out)["out"] == str(copy)
    assert {p.name: p.read_bytes() for p in original.iterdir()} == snapshot
    assert Checkpoint(copy).trainer_state["step"] == 4
    steps = [json.loads(x)["step"] for x in (copy / "metrics.jsonl").read_text().splitlines()
             if '"train"' in x]
    assert steps == [1, 2, 3, 4]  # continues the copied log
    # --out names another directory: the run continues there, the source stays as it was
    assert main(["train", "--resume", str(copy / "checkpoint.safetensors"), "--out", str(moved),
                 "max_steps=6"]) == 0
    assert Checkpoint(moved).trainer_state["step"] == 6
    assert Checkpoint(copy).trainer_state["step"] == 4
    steps = [json.loads(x)["step"] for x in (moved / "metrics.jsonl").read_text().splitlines()
             if '"train"' in x]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_train__resume_drops_log_lines_past_the_checkpoint(sudoku4, tmp_path, capsys):
    # a run killed after its last checkpoint logged steps the resumed run will log again
    assert main(train_argv(sudoku4, tmp_path, "max_steps=4")) == 0
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"split": "train", "step": 5}\n{"split": "train", "st')
    assert main(["train", "--resume", str(tmp_path), "max_steps=6"]) == 0
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if '"train"' in x]
    assert steps == [1, 2, 3, 4, 5, 6]


# -- item 11: exact limits, and which one ended the run ----------------------------------------

def test_trainer__max_steps_is_exact_inside_a_batch(sudoku4, tmp_path):
    # the batch flow, default TRM: 16 supervision steps per batch; the run used to end after
    # the whole batch
    model = {k: v for k, v in TINY_TRM.items() if k != "N_sup"}
    trainer = Trainer(tiny_config(sudoku4, tmp_path, max_steps=5, model=model,
                                  act_flow="batch"))
    assert trainer.policy.config["N_sup"] == 16
    result = trainer.train()
    assert result["step"] == 5 and result["stopped_by"] == "max_steps"
    state = Checkpoint(tmp_path).trainer_state
    assert state["step"] == 5 and state["batches"] == 1
    steps = [json.loads(x)["step"] for x in (tmp_path / "metrics.jsonl").read_text().splitlines()
             if '"train"' in x]
    assert steps == [1, 2, 3, 4, 5]


class HaltsAtOnce(nn.Module):
    """A stand-in reasoner that claims 4 supervision steps but halts every batch after one, so
    an epoch takes fewer steps than the progress bar's estimate."""

    max_supervision_steps = 4  # what the Trainer sizes the schedule with

    def __init__(self, spec):
        super().__init__()
        self.head = nn.Embedding(spec["vocab_size"], spec["vocab_size"])

    def supervision_steps(self, batch):
        logits = self.head(batch["inputs"])  # (B, T, V)
        loss = nn.functional.cross_entropy(logits.transpose(1, 2), batch["labels"])
        yield SimpleNamespace(loss=loss, logits=logits, metrics={"loss": loss.item()},
                              halted=True)

    def solve(self, inputs, puzzle_identifiers=None):
        return self.head(inputs).argmax(-1)


def test_trainer__epochs_end_the_run_and_the_bar_at_its_total(sudoku4, tmp_path, capsys):
    cfg = tiny_config(sudoku4, tmp_path, max_steps=None, epochs=2, progress=True)
    trainer = Trainer(cfg, policy_factory=lambda spec, cfg: HaltsAtOnce(spec))
    assert trainer.total_steps == 2 * 3 * 4  # 48 examples / 16 = 3 batches, 4 steps each
    result = trainer.train()
    assert result["step"] == 6 and result["stopped_by"] == "epochs"
    bar = capsys.readouterr().err.replace("\r", "\n").splitlines()
    assert any(line.strip().startswith("100%") and "6/6" in line for line in bar), bar


def test_cli_train__summary_says_which_limit_ended_the_run(sudoku4, tmp_path, capsys):
    assert main(train_argv(sudoku4, tmp_path / "a", "max_steps=3")) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["stopped_by"] == "max_steps"
    assert "train: stopped by max_steps=3 at step 3" in err
    # the default one epoch ends before a long time budget: say so, and how to use the budget
    assert main(train_argv(sudoku4, tmp_path / "b", "max_steps=none",
                           "time_budget_s=600")) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["stopped_by"] == "epochs"
    assert "stopped by epochs=1" in err and "before time_budget_s=600" in err
    result = Trainer(tiny_config(sudoku4, tmp_path / "c", max_steps=None, epochs=10**6,
                                 time_budget_s=0.5)).train()
    assert result["stopped_by"] == "time_budget_s"


# -- item 10: checkpoints on a schedule and on SIGINT/SIGTERM ----------------------------------

def test_trainer__periodic_checkpoints_by_steps_and_minutes(sudoku4, tmp_path, monkeypatch):
    saved = []
    real_save = Trainer.save

    def spy(self, path=None):
        saved.append(self.step)
        return real_save(self, path)

    monkeypatch.setattr(Trainer, "save", spy)
    # the batch flow: 2 steps per batch; checkpoints between batches, at the first boundary
    # past each multiple
    Trainer(tiny_config(sudoku4, tmp_path / "a", max_steps=10, checkpoint_every=4,
                        checkpoint_minutes=0, act_flow="batch")).train()
    assert saved == [4, 8, 10]  # the last one is the end of the run
    saved.clear()
    Trainer(tiny_config(sudoku4, tmp_path / "b", max_steps=6, checkpoint_minutes=1e-9,
                        act_flow="batch")).train()
    assert saved == [2, 4, 6]  # minutes: due after every batch here
    saved.clear()
    Trainer(tiny_config(sudoku4, tmp_path / "c", max_steps=6)).train()
    assert saved == [6]  # default: every 10 minutes, so only the end of this short run
    assert from_dict({}).checkpoint_minutes == 10.0


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_cli_train__signal_writes_a_checkpoint_and_says_how_to_resume(sig, status, sudoku4,
                                                                     tmp_path, capsys):
    out = tmp_path / "run"
    argv = train_argv(sudoku4, out, "max_steps=1000000", "log_every=1", "checkpoint_minutes=0")
    proc = subprocess.Popen([sys.executable, "-m", "tracegym", *argv], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        metrics = out / "metrics.jsonl"
        while not (metrics.is_file() and metrics.read_text().count("\n") >= 3):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.2)
        proc.send_signal(sig)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == status, stderr
    result = json.loads(stdout)
    assert result["stopped_by"] == "interrupt" and result["signal"] == sig.name
    step = Checkpoint(out).trainer_state["step"]
    assert step == result["step"] >= 3
    assert f"stopped by {sig.name} at step {step}" in stderr
    assert f"resume with:\n  tracegym train --resume {out}\n" in stderr
    assert "Traceback" not in stderr
    assert main(["train", "--resume", str(out), f"max_steps={step + 2}"]) == 0
    assert json.loads(capsys.readouterr().out)["step"] == step + 2
    # the log holds each step once: the interrupted run's lines, then the resumed run's
    logged = [json.loads(x)["step"] for x in metrics.read_text().splitlines() if '"train"' in x]
    assert logged == list(range(1, step + 3))


# -- item 13: the dataset's task must match --task ---------------------------------------------

def test_train__task_must_match_the_dataset(sudoku4, tmp_path, capsys, no_model):
    assert dataset_task(sudoku4, {}) == "sudoku"
    assert dataset_task(sudoku4, {"tokenizer": {}}) == "exectrace"  # trace_lm datasets
    assert dataset_task(tmp_path, {}) is None  # no Parquet copy: cannot tell, not refused
    argv = train_argv(sudoku4, tmp_path / "run")
    argv[argv.index("sudoku")] = "maze"
    assert main(argv) == 2
    err = one_error_line(capsys)
    assert "task: 'maze' does not match the dataset" in err and "holds sudoku data" in err


# -- item 17: help -------------------------------------------------------------------------------

@pytest.mark.parametrize("argv", [["train", "--help"], ["eval", "--help"],
                                  ["trace-model", "eval", "--help"],
                                  ["trace-model", "predict", "--help"]])
def test_help__checkpoint_metavar_and_task_names(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "CKPT" not in text
    assert "(default " not in text  # the formatter shows defaults as "(default: X)"
    if argv[0] != "train":
        assert "--checkpoint CHECKPOINT" in text
    else:
        assert "--resume CHECKPOINT" in text and "exectrace" in text and "--overwrite" in text


def test_config_file__recipe_config_loads(tmp_path):
    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "trm-sudoku4-cpu.yaml")
    assert cfg.task == "sudoku" and cfg.max_steps and cfg.validate() is cfg
