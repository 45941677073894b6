"""The tracer conformance kit: our recorders hold every property; broken adapters are caught with
minimal programs; PySnooper's and hunter's findings reproduce; the plugin, the command and the
README's adapter example work."""

from __future__ import annotations

import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tracegym.cli import main
from tracegym.tracers import Frame
from tracegym.tracers.conformance import (
    PROPERTIES,
    AdapterUnavailable,
    BadAdapterError,
    Records,
    Run,
    Violation,
    check,
    check_property,
    load_adapter,
    renumber_depths,
)
from tracegym.tracers.conformance import adapters as shipped
from tracegym.tracers.conformance.properties import by_name, matches_reference, well_nested
from tracegym.tracers.programs import Call, Program

REPO = Path(__file__).resolve().parents[2]
OURS = ["SettraceRecorder", "MonitoringRecorder", "CRecorder", "TracegymAdapter"]
FAST = 12  # programs per property in the default run; CI's slow run tries more


def adapter_or_skip(name: str):
    try:
        return getattr(shipped, name)()
    except AdapterUnavailable as e:
        pytest.skip(str(e))


def statements(source: str) -> int:
    return sum(isinstance(n, ast.stmt) for n in ast.walk(ast.parse(source)))


# ------------------------------------------------------------------------- our recorders
@pytest.mark.parametrize("prop", [p.name for p in PROPERTIES])
@pytest.mark.parametrize("name", OURS)
def test_our_recorders__hold_every_property(name, prop):
    adapter = adapter_or_skip(name)
    result = check_property(adapter, by_name(prop), max_examples=FAST)
    assert result.status == "held", result.message + "\n" + result.counterexample()


@pytest.mark.slow
@pytest.mark.parametrize("name", OURS)
def test_our_recorders__hold_every_property_on_many_programs(name):
    adapter = adapter_or_skip(name)
    failed = [r for r in check(adapter, max_examples=300) if r.status == "failed"]
    assert not failed, "\n".join(r.message + "\n" + r.counterexample() for r in failed)


CLOSES = Program("closes", textwrap.dedent("""\
    def g(n):
        for i in range(n):
            yield i


    def f(n):
        it = g(n)
        first = next(it)
        it.close()
        return first
    """), "f")


@pytest.mark.parametrize("name", OURS)
def test_our_recorders__a_closed_generator_gets_no_return_frame(name):
    """Found by the kit (matches_reference, generators): closing a suspended generator (3.11,
    3.12) recorded a return of None after its GeneratorExit, as though it had yielded None."""
    adapter = adapter_or_skip(name)
    frames = adapter.run(CLOSES.load(), (2,), {}).frames
    closing = [f for f in frames if f.function == "g"][-2:]
    if sys.version_info >= (3, 13):  # 3.13 closes a generator with no handler without running it
        assert [f.event for f in closing] == ["line", "return"]
    else:
        assert [(f.event, f.arg) for f in closing] == [("call", None),
                                                       ("exception", "GeneratorExit()")]
    matches_reference(adapter, CLOSES, Call((2,)))


# ----------------------------------------------------------------------- broken adapters
class DropsEverySecondLine(shipped.SettraceRecorder):
    def run(self, fn, args, kwargs):
        run = super().run(fn, args, kwargs)
        lines = [i for i, f in enumerate(run.frames) if f.event == "line"]
        dropped = set(lines[1::2])
        return Run([f for i, f in enumerate(run.frames) if i not in dropped], run.result,
                   run.exception)


class MisreportsReturns(shipped.SettraceRecorder):
    def run(self, fn, args, kwargs):
        run = super().run(fn, args, kwargs)
        return Run([f._replace(arg="None") if f.event == "return" else f for f in run.frames],
                   run.result, run.exception)


class MisreportsResult(shipped.SettraceRecorder):
    def run(self, fn, args, kwargs):
        run = super().run(fn, args, kwargs)
        return Run(run.frames, [run.result], run.exception)


@pytest.mark.parametrize(("broken", "prop"), [
    (DropsEverySecondLine, "matches_reference"),
    (MisreportsReturns, "matches_reference"),
    (MisreportsResult, "returns_as_untraced"),
])
def test_broken_adapters__are_caught_with_a_minimal_program(broken, prop):
    result = check_property(broken(), by_name(prop), max_examples=FAST)
    assert result.status == "failed"
    assert statements(result.program) <= 3, result.program
    assert result.program.startswith("def f(")


def test_broken_adapters__every_property_reports_through_check():
    results = {r.name: r for r in check(DropsEverySecondLine(), max_examples=FAST)}
    assert results["matches_reference"].status == "failed"
    assert results["returns_as_untraced"].status == "held"
    assert "event 3 differs" in results["matches_reference"].message


class LeavesItsTracer(shipped.SettraceRecorder):
    def run(self, fn, args, kwargs):
        run = super().run(fn, args, kwargs)
        sys.settrace(lambda *a: None)
        return run


def test_leaves_state_as_found__catches_a_tracer_left_installed():
    prior = sys.gettrace()
    try:
        result = check_property(LeavesItsTracer(), by_name("leaves_state_as_found"),
                                max_examples=3)
    finally:
        sys.settrace(prior)
    assert result.status == "failed" and "sys.gettrace()" in result.message


def test_well_nested__a_frame_left_without_return_or_exception_is_caught():
    class Unclosed(shipped.SettraceRecorder):
        def run(self, fn, args, kwargs):
            run = super().run(fn, args, kwargs)
            return Run([f for f in run.frames if not (f.event == "return" and f.depth)],
                       run.result, run.exception)

    program = Program("p", "def g(x):\n    return x\n\n\ndef f(n):\n    y = g(n)\n"
                      "    return y\n", "f")
    with pytest.raises(Violation, match="without a return or exception event"):
        well_nested(Unclosed(), program, Call((1,)))


def test_declared_omissions__are_not_failures():
    class LinesOnly(shipped.SettraceRecorder):
        def __init__(self):
            super().__init__()
            self.records = Records(calls=False, returns=False, exceptions=False,
                                   functions=False, depths=False, sources=False,
                                   repr_of=self.records.repr_of)

        def run(self, fn, args, kwargs):
            run = super().run(fn, args, kwargs)
            return Run([Frame("line", f.lineno, "", f.locals) for f in run.frames
                        if f.event == "line"], run.result, run.exception)

    results = {r.name: r.status for r in check(LinesOnly(), max_examples=FAST)}
    assert results.pop("well_nested") == "skipped"
    assert set(results.values()) == {"held"}


def test_renumber_depths__counts_only_the_frames_given():
    raw = [0, 2, 2, 2, 0]  # a call at raw depth 2: a frame of another file sits between
    frames = [Frame(e, 1, "", {}) for e in ("call", "call", "line", "return", "return")]
    assert [f.depth for f in renumber_depths(frames, raw)] == [0, 1, 1, 1, 0]


# --------------------------------------------------------------------- PySnooper, hunter
EXCEPT_NAME = Program("except_name", textwrap.dedent("""\
    def f(n):
        try:
            raise KeyError(n)
        except KeyError as e:
            n = 1
        return n
    """), "f")
EMPTY_SET = Program("empty_set", "def f(n):\n    s = set()\n    return s\n", "f")


def test_pysnooper__a_deleted_name_stays_in_its_locals():
    """Finding: PySnooper reports new and changed variables only, so the name of an except
    clause, deleted at its end, is still shown afterwards."""
    pytest.importorskip("pysnooper")
    with pytest.raises(Violation, match=r"recorded: line line 6 .*e=KeyError\(0\)"):
        matches_reference(shipped.PySnooperAdapter(), EXCEPT_NAME, Call((0,)))


def test_hunter__an_empty_set_is_written_as_a_dict():
    """Finding: hunter's safe_repr writes set() as {} (and frozenset() as frozenset({}))."""
    pytest.importorskip("hunter")
    with pytest.raises(Violation, match=r"expected: line .* s=set\(\)\n.* s=\{\}"):
        matches_reference(shipped.HunterAdapter(), EMPTY_SET, Call((0,)))


@pytest.mark.parametrize("name", ["PySnooperAdapter", "HunterAdapter"])
def test_peers__hold_the_properties_they_have_no_finding_for(name):
    adapter = adapter_or_skip(name)
    for prop in ("returns_as_untraced", "leaves_state_as_found", "well_nested",
                 "lines_in_their_function", "deterministic"):
        result = check_property(adapter, by_name(prop), max_examples=FAST)
        assert result.status == "held", (prop, result.message, result.counterexample())


def test_peers__skip_with_a_clear_message_when_missing(monkeypatch):
    monkeypatch.setitem(sys.modules, "pysnooper", None)  # import pysnooper raises ImportError
    monkeypatch.setitem(sys.modules, "hunter", None)
    with pytest.raises(AdapterUnavailable, match="PySnooper is not installed.*pip install"):
        load_adapter("tracegym.tracers.conformance.adapters:PySnooperAdapter")
    with pytest.raises(AdapterUnavailable, match="hunter is not installed.*pip install"):
        shipped.HunterAdapter()


# ------------------------------------------------------------------ loading, the command
@pytest.mark.parametrize(("spec", "message"), [
    ("no_colon", "must be written module:attribute"),
    ("tracegym_no_such_module:X", "no module 'tracegym_no_such_module'"),
    ("tracegym.tracers.conformance.adapters:Nope", "has no attribute 'Nope'"),
    ("tracegym.tracers.conformance:PROPERTIES", "is not an adapter"),
])
def test_load_adapter__bad_names_are_bad_input(spec, message):
    with pytest.raises(BadAdapterError, match=message):
        load_adapter(spec)


def test_check_tracer__prints_the_table_and_exits_0_when_all_hold(capsys):
    spec = "tracegym.tracers.conformance.adapters:SettraceRecorder"
    path = list(sys.path)
    assert main(["check-tracer", spec, "--max-examples", "5", "--kinds", "straight_line"]) == 0
    assert sys.path == path  # the cwd was importable while the adapter loaded, and only then
    out = capsys.readouterr().out
    for prop in PROPERTIES:
        assert prop.name in out
    assert "FAILED" not in out and "held (5 examples)" in out


def test_check_tracer__a_failure_prints_its_minimal_program_and_exits_1(capsys, monkeypatch,
                                                                        tmp_path):
    (tmp_path / "broken_tracer.py").write_text(textwrap.dedent("""\
            from tracegym.tracers.conformance import Run
            from tracegym.tracers.conformance.adapters import SettraceRecorder


            class Broken(SettraceRecorder):
                def run(self, fn, args, kwargs):
                    run = super().run(fn, args, kwargs)
                    return Run(run.frames[:-1], run.result, run.exception)
            """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["check-tracer", "broken_tracer:Broken", "--max-examples", "10",
                 "--seed", "3"]) == 1
    out = capsys.readouterr().out
    assert "matches_reference        FAILED" in out
    assert "minimal program:\n    def f(n):\n        x = 0\n        return x\n" in out


@pytest.mark.parametrize(("argv", "message"), [
    (["nope"], "must be written module:attribute"),
    (["tracegym.tracers.conformance.adapters:SettraceRecorder", "--kinds", "loopy"],
     "--kinds: kinds must be among"),
    (["tracegym.tracers.conformance.adapters:SettraceRecorder", "--max-examples", "0"],
     "--max-examples must be >= 1, got 0"),
])
def test_check_tracer__bad_input_exits_2_with_one_line(argv, message, capsys):
    assert main(["check-tracer", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_check_tracer__an_adapter_that_cannot_run_here_exits_2(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "pysnooper", None)
    assert main(["check-tracer", "tracegym.tracers.conformance.adapters:PySnooperAdapter"]) == 2
    assert "cannot run here: PySnooper is not installed" in capsys.readouterr().err


# ------------------------------------------------------------------------------ the plugin
def _plugin_installed() -> bool:
    """Whether the installed package registers the plugin (its pytest11 entry point)."""
    from importlib.metadata import entry_points

    return any(e.name == "tracegym-conformance" for e in entry_points(group="pytest11"))


def test_plugin__is_registered_by_the_installed_package():
    assert _plugin_installed()


def _pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")  # not the repository's settings
    load = [] if _plugin_installed() else ["-p", "tracegym.tracers.conformance.plugin"]
    return subprocess.run(
        [sys.executable, "-m", "pytest", *load, "-p", "no:cacheprovider", "-rs", *args],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_plugin__one_test_per_property_and_the_minimal_program_on_failure(tmp_path):
    (tmp_path / "my_adapters.py").write_text(textwrap.dedent("""\
        from tracegym.tracers.conformance import Run
        from tracegym.tracers.conformance.adapters import SettraceRecorder


        class Broken(SettraceRecorder):
            def run(self, fn, args, kwargs):
                run = super().run(fn, args, kwargs)
                lines = [f for f in run.frames if f.event == "line"]
                return Run([f for f in run.frames if f is not lines[-1]], run.result,
                           run.exception)
        """))
    done = _pytest(tmp_path, "--tracer-conformance=my_adapters:Broken",
                   "--tracer-conformance=tracegym.tracers.conformance.adapters:SettraceRecorder",
                   "--tracer-conformance-max-examples=8", "--tracer-conformance-kinds=loops,calls",
                   "-v")
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert "tracer-conformance[my_adapters:Broken]::matches_reference FAILED" in out
    assert "minimal program:" in out and "def f(n):" in out
    assert "1 failed" in out


def test_plugin__an_unavailable_adapter_skips_with_its_reason(tmp_path):
    spec = "tracegym.tracers.conformance.adapters:MonitoringRecorder" \
        if sys.version_info < (3, 12) else "tracegym.tracers.conformance.adapters:CRecorder"
    done = _pytest(tmp_path, f"--tracer-conformance={spec}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(PROPERTIES)} skipped" in done.stdout
    assert ("needs Python 3.12+" in done.stdout) or ("not available" in done.stdout)


def test_plugin__bad_kinds_are_a_usage_error(tmp_path):
    done = _pytest(tmp_path, "--tracer-conformance=tracegym.tracers.conformance.adapters:"
                             "SettraceRecorder", "--tracer-conformance-kinds=loopy")
    assert done.returncode == 4 and "--tracer-conformance-kinds" in done.stderr


# -------------------------------------------------------------------- the README example
def test_readme_example__the_adapter_holds_every_property_it_can_be_checked_for():
    """examples/tracer_adapter.py is README's "Property-test your own tracer" example."""
    path = REPO / "examples" / "tracer_adapter.py"
    spec = importlib.util.spec_from_file_location("tracer_adapter", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    results = {r.name: r for r in check(module.LineTracer(), max_examples=FAST)}
    assert results.pop("well_nested").status == "skipped"
    assert {r.status for r in results.values()} == {"held"}, [
        (r.name, r.message, r.counterexample()) for r in results.values()]
    code = [line for line in path.read_text().splitlines() if line.strip()]
    assert len(code) <= 22, "README promises a short example"
