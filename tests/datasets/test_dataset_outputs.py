"""What every ``tracegym data <task>`` builder shares: the output location is checked before
anything is generated (errors name the user's path), and the help follows one convention."""

import argparse
import errno
import re

import pytest

from tracegym.cli import main as cli_main
from tracegym.datasets import arc, cli, maze, sudoku, trace_lm, traces
from tracegym.errors import TracegymError

BUILDERS = {"sudoku": sudoku, "maze": maze, "arc": arc, "traces": traces, "trace_lm": trace_lm}
# the slow part of each builder, which must not start when the output cannot be written
SLOW = {"sudoku": "draw_splits", "maze": "draw_splits", "arc": "procedural_tasks",
        "traces": "_programs", "trace_lm": "_tokenizer"}


def _options(task: str, tmp_path) -> list[str]:
    """Small, valid options for ``task`` (besides ``--out``)."""
    if task == "trace_lm":
        folder = tmp_path / "traces"
        folder.mkdir(exist_ok=True)
        (folder / "traces.jsonl").write_text("")
        return ["--traces", str(folder)]
    return {"sudoku": ["--size", "4", "--train", "30000", "--no-progress"],
            "maze": ["--size", "7", "--train", "30000", "--no-progress"],
            "arc": ["--set", "procedural", "--train", "3", "--test", "2", "--no-progress"],
            "traces": ["--n", "30000", "--no-progress"]}[task]


def _never(*args, **kwargs):
    raise AssertionError("generation started before the output location was checked")


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_data__a_file_as_parent_fails_first_with_one_line(task, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(BUILDERS[task], SLOW[task], _never)
    (tmp_path / "afile").write_text("x")
    out = tmp_path / "afile" / "sub"
    code = cli_main(["data", task, "--out", str(out), *_options(task, tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"out: {str(out)!r} cannot be created: " in err and "is not a directory" in err
    assert "partial" not in err and "probe" not in err


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_data__an_unwritable_location_fails_first(task, tmp_path, monkeypatch, capsys):
    from tracegym.datasets import writer

    def refuse(prefix, dir):  # as /proc or a read-only mount does; root ignores mode bits
        raise PermissionError(errno.EPERM, "Operation not permitted", f"{dir}/{prefix}1")

    monkeypatch.setattr(BUILDERS[task], SLOW[task], _never)
    monkeypatch.setattr(writer.tempfile, "mkdtemp", refuse)
    out = tmp_path / "x"
    code = cli_main(["data", task, "--out", str(out), *_options(task, tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert f"out: {str(out)!r} cannot be created: Operation not permitted" in err


def test_data__a_generator_option_error_is_one_line(tmp_path, capsys):
    # the check lives in the generator (envs/), whose ValueError the builder reports as input
    code = cli_main(["data", "maze", "--kind", "kruskal", "--size", "8", "--out",
                     str(tmp_path / "d"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "size must be odd" in err, err
    with pytest.raises(TracegymError, match="size must be odd"):
        maze.build_maze_dataset(tmp_path / "d", kind="kruskal", size=8, progress=False)


# ---------------------------------------------------------------------------------------------
# help


def _parser(task: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    cli.COMMANDS[f"data {task}"][1](parser)
    return parser


def test_data_commands__one_per_builder_module():
    assert sorted(cli.COMMANDS) == [f"data {task}" for task in sorted(BUILDERS)]


@pytest.mark.parametrize("task", sorted(BUILDERS))
def test_help__short_texts_no_defaults_in_them_and_shared_metavars(task):
    module = BUILDERS[task]
    summary, _, rest = module.__doc__.partition("\n")
    assert summary and len(summary) <= 90 and rest.startswith("\n"), summary  # one short line
    help_text = cli.COMMANDS[f"data {task}"][0]
    assert 0 < len(help_text) <= 80, help_text
    actions = {a.dest: a for a in _parser(task)._actions}
    for action in actions.values():
        if action.help is None or action.dest == "help":
            continue
        # the formatter shows defaults; the text must not repeat them
        assert not re.search(r"\(default\b", action.help), (task, action.help)
        assert len(action.help) <= 100, (task, action.help)
    assert actions["out"].metavar == "DIR" and actions["out"].required
    assert "overwrite" in actions
    if task != "trace_lm":
        assert actions["shard"].metavar == "I/N" and actions["shard"].default == "0/1"
        assert "no_progress" in actions
    if task == "traces":
        assert actions["spec"].metavar == "FILE" and actions["source"].metavar == "SOURCE"
    if task == "trace_lm":
        assert actions["traces"].metavar == "DIR"


def test_help__shard_default_parses_to_the_whole_dataset():
    args = _parser("sudoku").parse_args(["--out", "d"])
    assert args.shard == (0, 1)


def test_arc__task_counts_only_when_typed(tmp_path, monkeypatch):
    # a real ARC set refuses counts the user typed, so a default must not look typed
    with pytest.raises(TracegymError, match="only procedural sets take task counts"):
        arc.build_arc_dataset(tmp_path / "d", arc_set="arc-agi-1", tasks=(400, 400))
    seen = []

    def fake(out, **kwargs):
        seen.append(kwargs["tasks"])
        return {"out": str(out), "set": kwargs["arc_set"], "tasks": 0, "puzzles": 0,
                "train_examples": 0, "test_examples": 0, "seed": 0, "shard": [0, 1],
                "dropped_train_examples": 0}

    monkeypatch.setattr(arc, "build_arc_dataset", fake)
    parser = _parser("arc")
    for argv in (["--out", "d"], ["--out", "d", "--test", "7"], ["--out", "d", "--train", "400"]):
        cli.arc_main(parser.parse_args(argv))
    assert seen == [None, (400, 7), (400, 400)]
    assert " ".join(parser.format_help().split()).count("generate (default: 400)") == 2


def test_traces__source_and_spec_are_documented_in_help():
    text = _parser("traces").format_help()
    assert "--source SOURCE" in text and "--spec FILE" in text
    assert "generated, cruxeval, or a DIR of .py files" in text
