import subprocess
import sys

import pytest

from tracegym.cli import main

SOLVED = "417369825632158947958724316825437169791586432346912758289643571573291684164875293"


def test_solve__prints_solution(top95_lines, capsys):
    assert main(["solve", top95_lines[0]]) == 0
    assert capsys.readouterr().out.strip() == SOLVED
    assert main(["solve", "sudoku", top95_lines[0], "--stats"]) == 0
    assert "guesses=" in capsys.readouterr().out


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
