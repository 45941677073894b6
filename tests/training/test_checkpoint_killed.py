"""The checkpoint writer under SIGKILL and SIGTERM, and one process per run directory.

A subprocess saves a checkpoint, stops before the rename (``TRACEGYM_PAUSE_AT=rename``,
:func:`tracegym.outputs.pause_point`) and is killed there; the next save to the same path leaves
nothing but the checkpoint, equal to one saved without interruption.
"""

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch import nn

from tracegym.outputs import PAUSE_AT_ENV, PAUSE_FILE_ENV, OutputBusyError
from tracegym.training.checkpoint import save_checkpoint
from tracegym.training.rundir import lock_run_dir, prepare_run_dir

# a seeded model and optimizer, saved to `path`: the same bytes in any process
SAVE_TO_PATH = """
import random
import numpy as np, torch
from torch import nn
from tracegym.training.checkpoint import save_checkpoint
random.seed(0); np.random.seed(0); torch.manual_seed(0)
model = nn.Linear(3, 2)
optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
model(torch.ones(1, 3)).sum().backward()
optimizer.step()
save_checkpoint(path, model=model, optimizer=optimizer, config={"seed": 0},
                task_spec={}, policy_config={}, trainer_state={"step": 1})
"""
SAVE = "import sys\npath = sys.argv[1]\n" + SAVE_TO_PATH
HOLD = """
import sys
from tracegym.outputs import pause_point
from tracegym.training.rundir import lock_run_dir
lock_run_dir(sys.argv[1])
pause_point("rename")
"""
WAIT_S = 120


def _save_here(path) -> None:
    """SAVE in this process, leaving its random generators as they were."""
    states = random.getstate(), np.random.get_state()
    with torch.random.fork_rng():
        exec(SAVE_TO_PATH, {"path": str(path)})
    random.setstate(states[0])
    np.random.set_state(states[1])


def _content(path) -> tuple[dict, dict]:
    """(metadata, {name: tensor bytes}): safetensors writes the metadata in no fixed order, so
    two saves of one state differ in their header's bytes only."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return f.metadata(), {k: f.get_tensor(k).numpy().tobytes() for k in f.keys()}


def _paused(script: str, arg, flag) -> subprocess.Popen:
    env = {**os.environ, PAUSE_AT_ENV: "rename", PAUSE_FILE_ENV: str(flag)}
    # cwd outside the clone: `python -c` puts the cwd first on sys.path
    proc = subprocess.Popen([sys.executable, "-c", script, str(arg)], env=env,
                            cwd=flag.parent, stderr=subprocess.PIPE)
    deadline = time.monotonic() + WAIT_S
    while not flag.exists():  # the process says it got there; no guessed sleep
        if proc.poll() is not None:
            pytest.fail(f"ended before the pause: {proc.stderr.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"no pause in {WAIT_S} s")
        time.sleep(0.01)
    return proc


@pytest.mark.slow  # a subprocess importing torch
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_save_checkpoint__killed_before_the_rename_leaves_nothing_after_the_next_save(
        sig, tmp_path, capsys):
    reference = tmp_path / "reference" / "checkpoint.safetensors"
    _save_here(reference)
    run = tmp_path / "run"
    path = run / "checkpoint.safetensors"
    proc = _paused(SAVE, path, tmp_path / "paused")
    proc.send_signal(sig)
    proc.communicate(timeout=WAIT_S)
    assert proc.returncode == -sig
    tmp = f".checkpoint.safetensors.tmp-{proc.pid}"
    assert os.listdir(run) == ([tmp] if sig == signal.SIGKILL else [])

    capsys.readouterr()
    _save_here(path)
    assert os.listdir(run) == ["checkpoint.safetensors"]
    assert _content(path) == _content(reference)
    err = capsys.readouterr().err
    if sig == signal.SIGKILL:
        assert err.count("\n") == 1 and f"removed {tmp}" in err, err


def test_save_checkpoint__a_dead_process_temporary_file_goes_a_live_one_stays(tmp_path, capsys):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    dead = tmp_path / f".checkpoint.safetensors.tmp-{proc.pid}"
    live = tmp_path / f".checkpoint.safetensors.tmp-{os.getppid()}"
    dead.write_bytes(b"half")
    live.write_bytes(b"half")
    model = nn.Linear(2, 1)
    save_checkpoint(tmp_path / "checkpoint.safetensors", model=model,
                    optimizer=torch.optim.SGD(model.parameters(), lr=0.1), config={},
                    task_spec={}, policy_config={}, trainer_state={"step": 0})
    assert sorted(os.listdir(tmp_path)) == sorted(["checkpoint.safetensors", live.name])
    assert f"removed {dead.name}" in capsys.readouterr().err


def test_prepare_run_dir__removes_a_killed_save_and_refuses_a_live_run(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run = tmp_path / "run"
    run.mkdir()
    (run / f".checkpoint.safetensors.tmp-{proc.pid}").write_bytes(b"half")
    prepare_run_dir(run, resume=True)
    assert os.listdir(run) == []
    lock = lock_run_dir(run)  # this process trains there: reentrant for it
    try:
        assert prepare_run_dir(run, overwrite=True) == run
    finally:
        lock.release()
    assert os.listdir(tmp_path) == ["run"]


@pytest.mark.slow  # a subprocess
def test_prepare_run_dir__a_run_directory_in_use_by_another_process_is_refused(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").write_text("")
    proc = _paused(HOLD, run, tmp_path / "paused")
    try:
        with pytest.raises(OutputBusyError, match=f"being written by another process "
                                                  f"\\(pid {proc.pid}\\)"):
            prepare_run_dir(run, overwrite=True)
        # the live run's files are untouched
        assert sorted(os.listdir(run)) == [".lock", "metrics.jsonl"]
    finally:
        proc.kill()
        proc.wait()
    prepare_run_dir(run, overwrite=True)  # killed: its lock went with it, the file stayed
    assert os.listdir(run) == []
