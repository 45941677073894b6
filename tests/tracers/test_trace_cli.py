"""``tracegym trace``: a failed call prints its trace and exits 1; bad options exit 2."""

import pytest

from tracegym.cli import main

PROGRAM = '''\
def g(x):
    return 10 // x


def f(a, b, c):
    s = a + b
    return g(c - 3)


def spin(n):
    while True:
        n += 1
'''
MODES = {"sandbox": [], "in-process": ["--in-process"]}


@pytest.fixture
def prog(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(PROGRAM)
    return str(path)


@pytest.mark.parametrize("mode", sorted(MODES))
def test_trace__a_raising_call_prints_its_exception_frames_and_exits_1(prog, mode, capsys):
    assert main(["trace", prog, "--entry", "f", "--args", "1, 2, 3", *MODES[mode]]) == 1
    out, err = capsys.readouterr()
    # the frames up to the exception, then the exception leaving g and f
    assert '<|call_sep|>{"x": "0"}<|action_sep|>def g(x):' in out
    assert out.count("<|exception_sep|>") == 2 and "ZeroDivisionError" in out
    assert err == "tracegym: trace: f(1, 2, 3) raised ZeroDivisionError('integer division or " \
                  "modulo by zero')\n"


@pytest.mark.parametrize("mode", sorted(MODES))
def test_trace__arguments_that_do_not_fit_raise_before_the_first_line(prog, mode, capsys):
    # the TypeError comes from binding the arguments: no frame of f exists to trace
    assert main(["trace", prog, "--entry", "g", "--args", "1, 2, 3", *MODES[mode]]) == 1
    out, err = capsys.readouterr()
    assert out.startswith("<|trace_context_start|>")
    assert "TypeError" in err and "before its first line" in err and err.count("\n") == 1


@pytest.mark.parametrize("mode", sorted(MODES))
def test_trace__a_returning_call_exits_0(prog, mode, capsys):
    assert main(["trace", prog, "--entry", "f", "--args", "1, 2, 4", *MODES[mode]]) == 0
    out, err = capsys.readouterr()
    assert '<|arg_sep|>"10"<|frame_sep|>' in out and err == ""


def test_trace__truncation_is_said_on_stderr_and_exits_0(prog, capsys):
    assert main(["trace", prog, "--entry", "f", "--args", "1, 2, 4", "--max-events", "2",
                 "--in-process"]) == 0
    assert "recording stopped after 2 events (--max-events)" in capsys.readouterr().err


@pytest.mark.parametrize("extra, message", [
    (["--max-events", "0"], "--max-events must be >= 1, got 0"),
    (["--max-repr", "0"], "--max-repr must be >= 1, got 0"),
    (["--timeout", "0"], "--timeout must be a number of seconds > 0, got 0.0"),
    (["--timeout", "nan"], "--timeout must be a number of seconds > 0, got nan"),
    (["--args", "[1"], "args: not an argument list"),
    (["--args", "len"], "args: argument 'len' in 'len' is not a Python literal"),
])
def test_trace__invalid_options_exit_2_with_one_line(prog, extra, message, capsys):
    assert main(["trace", prog, "--entry", "f", *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and message in err, err


def test_trace__a_file_that_is_not_utf8_exits_2(tmp_path, capsys):
    path = tmp_path / "latin.py"
    path.write_bytes(b"def f():\n    return '\xe9'\n")
    assert main(["trace", str(path), "--entry", "f"]) == 2
    assert "is not UTF-8 text" in capsys.readouterr().err


@pytest.mark.parametrize("mode", sorted(MODES))
def test_trace__a_looping_call_times_out_with_one_line_and_exit_1(prog, mode, capsys):
    assert main(["trace", prog, "--entry", "spin", "--args", "0", "--timeout", "0.5",
                 "--max-events", "20", *MODES[mode]]) == 1
    out, err = capsys.readouterr()
    assert err == "tracegym: error: timeout: wall time 0.5s exceeded\n", err
    # the sandbox kills the child: no trace; in-process the trace up to the alarm comes first
    assert out.startswith("<|trace_context_start|>") if mode == "in-process" else out == ""


def test_trace__looping_module_code_in_process_times_out(tmp_path, capsys):
    path = tmp_path / "stuck.py"
    path.write_text("while True:\n    pass\n\ndef f():\n    pass\n")
    assert main(["trace", str(path), "--entry", "f", "--in-process", "--timeout", "0.3"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == "tracegym: error: timeout: wall time 0.3s exceeded (module " \
                                "code)\n", err


def test_trace__module_code_that_raises_in_process_is_one_line_and_exit_1(tmp_path, capsys):
    path = tmp_path / "bad.py"
    path.write_text("raise ValueError('at import')\n\ndef f():\n    pass\n")
    assert main(["trace", str(path), "--entry", "f", "--in-process"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the module code raised ValueError: at import" in err
