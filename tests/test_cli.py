import subprocess
import sys

import numpy as np
import pytest

from tracegym.cli import DEBUG_ENV, main
from tracegym.envs.sudoku import cli as sudoku_cli
from tracegym.envs.sudoku.board import format_puzzle
from tracegym.envs.sudoku.solver import count_solutions
from tracegym.errors import SandboxTimeout, TracegymError

SOLVED = "417369825632158947958724316825437169791586432346912758289643571573291684164875293"


def test_solve__prints_solution(top95_lines, capsys):
    assert main(["solve", top95_lines[0]]) == 0
    assert capsys.readouterr().out.strip() == SOLVED
    assert main(["solve", "sudoku", top95_lines[0], "--stats"]) == 0
    result = count_solutions(top95_lines[0])  # --stats: the compiled solver's effort
    assert capsys.readouterr().out.split() == [SOLVED, f"nodes={result.nodes}",
                                               f"guesses={result.guesses}"]


def test_solve__a_long_plain_search_is_handed_to_the_compiled_solver(top95_lines, capsys,
                                                                     monkeypatch):
    from tracegym.envs.sudoku import plain_solver

    def over_budget(*args, **kwargs):
        raise plain_solver.SearchBudgetExceeded("no answer within 1 search nodes")

    monkeypatch.setattr(plain_solver, "count_solutions", over_budget)
    assert main(["solve", top95_lines[0]]) == 0
    assert capsys.readouterr().out.strip() == SOLVED
    assert main(["solve", "." * 81]) == 2  # the compiled solver's verdict, as one line
    assert capsys.readouterr().err.strip() == "tracegym: error: puzzle: multiple solutions"


def test_solve__file_reports_each_line(tmp_path, top95_lines, capsys):
    path = tmp_path / "p.txt"
    path.write_text(f"{top95_lines[0]}\n{'.' * 16}\n.2341...........\n")
    assert main(["solve", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == [SOLVED, "multiple solutions", "no solution"]


@pytest.mark.parametrize("argv, message", [
    (["solve", "123"], "tracegym: error: puzzle: length 3 is not a Sudoku size"),
    (["solve", "11" + "." * 79], "tracegym: error: puzzle: digit 1 appears twice in row 1"),
    (["solve", "." * 81], "tracegym: error: puzzle: multiple solutions"),
    (["solve", ".2341" + "." * 11], "tracegym: error: puzzle: no solution"),
    (["generate", "--count", "-1"], "tracegym: error: count must be >= 0, got -1"),
    (["generate", "maze", "--count", "-1"], "tracegym: error: count must be >= 0, got -1"),
    # checked before the checkpoint is read
    (["trace-model", "eval", "--checkpoint", "none", "--episodes", "0"],
     "tracegym: error: episodes must be >= 1, got 0"),
    (["trace-model", "eval", "--checkpoint", "none", "--rollout-episodes", "-1"],
     "tracegym: error: rollout_episodes must be >= 0, got -1"),
    (["trace-model", "predict", "--checkpoint", "none", "--source", __file__, "--entry", "f",
      "--max-frames", "0"], "tracegym: error: max_frames must be >= 1, got 0"),
])
def test_cli__bad_input_is_one_line_and_exit_2(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_cli__usage_errors_are_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["generate", "--size", "7"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "invalid choice: 7" in err


def test_generate__prints_unique_puzzles(capsys):
    assert main(["generate", "-n", "3", "--size", "4", "--seed", "5", "--solutions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and all(len(line.split()[1]) == 16 for line in lines)


@pytest.mark.parametrize("argv", [["--help"], ["solve", "--help"], ["solve", "sudoku", "--help"],
                                  ["generate", "sudoku", "--help"], ["data", "--help"]])
def test_cli__help_on_every_command(argv):
    out = subprocess.run([sys.executable, "-m", "tracegym", *argv], capture_output=True,
                         text=True, check=True).stdout
    assert out.startswith("usage: tracegym")


def _help(argv: list[str], capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _modules_after(argv: list[str]) -> list[str]:
    """Which heavy modules a fresh interpreter has loaded after running ``tracegym argv``."""
    code = ("import sys\nfrom tracegym.cli import main\ntry:\n    main(sys.argv[1:])\n"
            "except SystemExit:\n    pass\n"
            "print('LOADED', [m for m in ('torch', 'numba', 'pyarrow', 'gymnasium', 'numpy') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                         check=True).stdout
    return eval(out.split("LOADED ")[-1])


def test_cli__help_imports_no_command_module():
    """The parser is built from names read from source: no torch, numba, nor even numpy (or the
    env registrations, which import Gymnasium) at --help."""
    assert _modules_after(["--help"]) == []
    assert _modules_after(["data", "--help"]) == []


def test_cli__solve_one_puzzle_imports_no_numba_nor_torch(top95_lines):
    # one puzzle is solved in plain Python: the compiled solver's start-up would dominate
    assert {"torch", "numba"}.isdisjoint(_modules_after(["solve", top95_lines[0]]))
    assert "torch" not in _modules_after(["data", "sudoku", "--help"])


def test_cli__help_lists_every_command_and_builder(capsys):
    out = _help([], capsys)
    for name in ("data", "trace", "train", "eval", "plot", "trace-model", "solve", "generate"):
        assert f"\n    {name} " in out or f"\n    {name}\n" in out, name
    out = _help(["data"], capsys)
    for task in ("arc", "maze", "sudoku", "traces"):
        assert f"\n    {task} " in out, task


@pytest.mark.parametrize("task", ["sudoku", "maze", "arc", "traces", "trace_lm"])
def test_data_help__short_plain_description_and_options(task, capsys):
    out = _help(["data", task], capsys)
    assert "--out" in out  # the builder's own options are there
    for markup in ("``", ":func:", ":mod:", ":class:", "COLUMNS"):
        assert markup not in out, markup
    description = out.split("\n\n")[1]  # usage, description, options
    assert 0 < len(description.splitlines()) <= 6, out


def test_help__defaults_shown_and_task_optional(capsys):
    out = _help(["generate", "sudoku"], capsys)
    assert "how many puzzles (default: 10)" in out
    assert "--solutions" in out and "(default: False)" not in out
    assert "[TASK]" in _help(["solve"], capsys)
    assert _help(["solve", "sudoku"], capsys).startswith("usage: tracegym solve [sudoku] ")
    assert _help(["solve", "maze"], capsys).startswith("usage: tracegym solve maze ")
    # and without the task word the default task's options are there too
    with pytest.raises(SystemExit):
        main(["solve"])
    assert "tracegym solve [sudoku]: error: the following arguments are required: PUZZLE" \
        in capsys.readouterr().err


def test_cli__version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith("tracegym ") and out.count("\n") == 1


# --------------------------------------------------------------------------------------------
# central error handling: every command's exceptions go through main()


def _failing_solve(monkeypatch, error: BaseException) -> None:
    def run(args):
        raise error

    help_text, add_arguments, _ = sudoku_cli.COMMANDS["solve sudoku"]
    monkeypatch.setitem(sudoku_cli.COMMANDS, "solve sudoku", (help_text, add_arguments, run))


@pytest.mark.parametrize("error, code, message", [
    (PermissionError(13, "Permission denied", "/sys/kernel/x"), 2,
     "tracegym: error: /sys/kernel/x: Permission denied"),
    (NotADirectoryError(20, "Not a directory", "afile/sub"), 2,
     "tracegym: error: afile/sub: Not a directory"),
    (FileExistsError(17, "File exists", "runs/x"), 2, "tracegym: error: runs/x: File exists"),
    (FileNotFoundError("puzzles: no such file 'x'"), 2,
     "tracegym: error: puzzles: no such file 'x'"),
    (TracegymError("size: must be one of [4, 9], got 5"), 2,
     "tracegym: error: size: must be one of [4, 9], got 5"),
    (ValueError("count must be >= 0, got -1"), 2, "tracegym: error: count must be >= 0"),
    (SandboxTimeout("program ran past its 1 s limit"), 1,
     "tracegym: error: program ran past its 1 s limit"),
    (KeyboardInterrupt(), 130, "tracegym: interrupted"),
])
def test_cli__errors_are_one_line(monkeypatch, capsys, error, code, message):
    _failing_solve(monkeypatch, error)
    monkeypatch.delenv(DEBUG_ENV, raising=False)
    assert main(["solve", "x"]) == code
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


@pytest.mark.parametrize("error", [RuntimeError("internal state"), ZeroDivisionError(),
                                   KeyError("k")])
def test_cli__bugs_keep_their_traceback(monkeypatch, error):
    _failing_solve(monkeypatch, error)
    with pytest.raises(type(error)):
        main(["solve", "x"])


@pytest.mark.parametrize("error", [TracegymError("bad"), PermissionError(13, "denied", "p"),
                                   SandboxTimeout("slow"), KeyboardInterrupt()])
def test_cli__debug_env_shows_every_traceback(monkeypatch, error):
    _failing_solve(monkeypatch, error)
    monkeypatch.setenv(DEBUG_ENV, "1")
    with pytest.raises(type(error)):
        main(["solve", "x"])


# --------------------------------------------------------------------------------------------
# solve FILE: bulk parse, batch solve, bulk write


def _per_line_answers(lines: list[str]) -> list[str]:
    """What the per-puzzle library calls say about each line (the bulk path must agree)."""
    out = []
    for line in lines:
        result = count_solutions(line, 2)
        out.append({0: "no solution", 1: None}.get(result.num_solutions, "multiple solutions")
                   or format_puzzle(result.solution))
    return out


def test_solve_file__matches_per_puzzle_solver(tmp_path, top95_lines, capsys):
    rng = np.random.default_rng(0)
    lines = [top95_lines[i] for i in rng.integers(0, len(top95_lines), 300)]  # >= 256: parallel
    lines += [".2341" + "." * 11, "." * 16, "1" + "." * 35]
    path = tmp_path / "p.txt"
    path.write_text("\n".join(lines) + "\n")
    assert main(["solve", str(path)]) == 1
    assert capsys.readouterr().out.splitlines() == _per_line_answers(lines)


def test_solve_file__mixed_sizes_comments_and_spaces_keep_order(tmp_path, top95_lines, capsys):
    four = "1234341221434321"
    text = (f"# a comment\n\n{top95_lines[1]}\n  {' '.join(four)}  \r\n"
            f"{top95_lines[2].replace('.', '0')}\n")
    path = tmp_path / "mixed.txt"
    path.write_text(text)
    assert main(["solve", str(path), "--stats"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out] == _per_line_answers(
        [top95_lines[1], four, top95_lines[2]])
    assert all("nodes=" in line and "guesses=" in line for line in out)
    assert main(["solve", str(path), "--grid"]) == 0
    assert capsys.readouterr().out.count("|") == 2 * 9 + 4 + 2 * 9  # 2 per 9x9 row, 1 per 4x4


@pytest.mark.parametrize("bad, message", [
    ("12", "p.txt:4: length 2 is not a Sudoku size"),
    ("11" + "." * 79, "p.txt:4: digit 1 appears twice in row 1"),
    ("x" + "." * 80, "p.txt:4: bad character 'x' at position 0"),
    ("A" + "." * 80, "p.txt:4: bad character 'A' at position 0"),
    ("é" + "." * 80, "p.txt:4: bad character"),
])
def test_solve_file__malformed_line_names_the_first_bad_line(tmp_path, top95_lines, bad, message,
                                                              capsys):
    lines = [top95_lines[0], "# comment", top95_lines[1], bad, "13", top95_lines[2]]
    for spaced in (False, True):  # the plain-file fast path and the line-by-line one
        path = tmp_path / "p.txt"
        path.write_text("\n".join(f" {line}" if spaced else line for line in lines) + "\n")
        assert main(["solve", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"tracegym: error: {message}") and err.count("\n") == 1, err


def test_solve_file__empty_file_and_directory(tmp_path, capsys):
    path = tmp_path / "empty.txt"
    path.write_text("# nothing\n\n")
    assert main(["solve", str(path)]) == 2
    assert "holds no puzzle" in capsys.readouterr().err
    assert main(["solve", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"tracegym: error: {tmp_path}: Is a directory\n"


@pytest.mark.parametrize("arg", ["nonexistent.txt", "puzzles.sdk", "some/dir/p", "./x"])
def test_solve__missing_file_is_named_not_parsed_as_a_puzzle(arg, capsys):
    assert main(["solve", arg]) == 2
    assert capsys.readouterr().err == f"tracegym: error: {arg}: No such file or directory\n"


def test_solve__file_under_a_file_is_not_a_directory(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    arg = str(tmp_path / "afile" / "p.txt")
    assert main(["solve", arg]) == 2
    assert capsys.readouterr().err == f"tracegym: error: {arg}: Not a directory\n"


@pytest.mark.parametrize("arg, message", [
    ("1x2" + "." * 78, "bad character 'x'"),  # a typo is still a puzzle error
    ("." * 79 + ".A", "bad character 'A'"),  # looks like `name.A` but every char is a cell
    ("." * 15, "length 15 is not a Sudoku size"),
])
def test_solve__puzzle_like_text_is_a_puzzle(arg, message, capsys):
    assert main(["solve", arg]) == 2
    assert message in capsys.readouterr().err


def test_cli__python_m_exit_code_on_bad_input():
    proc = subprocess.run([sys.executable, "-m", "tracegym", "solve", "x"], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


@pytest.mark.parametrize("extra, message", [
    (["--train", "0"], "tracegym: error: train"),
    (["--shard", "3/2"], "shard"),
    (["--augment", "-1"], "tracegym: error: augment"),
])
def test_data_sudoku__bad_arguments_exit_2(tmp_path, extra, message, capsys):
    try:
        code = main(["data", "sudoku", "--out", str(tmp_path / "d"), "--no-progress", *extra])
    except SystemExit as exc:  # argparse-level rejection
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "d").exists()


def test_trace__prints_cwm_of_a_file_and_rejects_bad_input(tmp_path, capsys):
    source = tmp_path / "prog.py"
    source.write_text("def f(xs, k=2):\n    out = [x * k for x in xs]\n    return out\n")
    assert main(["trace", str(source), "--entry", "f", "--args", "[1, 2], k=3",
                 "--in-process"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<|trace_context_start|>def f(xs, k=2):  # << START_OF_TRACE")
    assert '<|arg_sep|>"[3, 6]"<|frame_sep|>' in out
    assert main(["trace", str(source), "--entry", "g", "--in-process"]) == 2
    assert "entry" in capsys.readouterr().err
    assert main(["trace", str(source), "--entry", "f", "--args", "[1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "args: not an argument list" in err
    assert main(["trace", str(tmp_path / "missing.py"), "--entry", "f"]) == 2
    assert "no such file" in capsys.readouterr().err
    broken = tmp_path / "broken.py"
    broken.write_text("def f(:\n    pass\n")
    for mode in (["--in-process"], []):
        assert main(["trace", str(broken), "--entry", "f", *mode]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "line 1" in err, err


def test_cli__missing_train_extra_is_one_line_naming_the_extra(tmp_path):
    # torch blocked as in a core install (`pip install tracegym` without [train])
    code = ("import sys; sys.modules['torch'] = None; from tracegym.cli import main; "
            f"sys.exit(main(['train', '--data', {str(tmp_path)!r}, '--out', "
            f"{str(tmp_path / 'run')!r}]))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert "'train' extra" in done.stderr and "tracegym[train]" in done.stderr
