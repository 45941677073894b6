"""tracegym.tracers.programs: the Program/Call records, argument lists, the seeded generator,
and the loaders (user directories, installed modules, CRUXEval); a section per module."""

import ast
import json
import random
import re
import signal
from contextlib import contextmanager

import pytest

from tracegym.tracers.programs import (
    CURATED_FUNCTIONS,
    KINDS,
    Call,
    Program,
    cruxeval_programs,
    curated_modules,
    generate_program,
    generate_programs,
    parse_arguments,
    programs_from_directory,
    programs_from_module,
)

LOOPS = (ast.For, ast.While, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
BRANCHES = (ast.If, ast.IfExp, ast.Break, ast.Continue)


@contextmanager
def guard(seconds: float = 1.0):
    """Fail a call that runs past ``seconds`` instead of hanging the suite (main thread only)."""

    def expire(signum, frame):
        raise TimeoutError(f"call ran past {seconds} s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def run_all(program: Program) -> list:
    fn = program.load()
    results = []
    for call in program.inputs:
        call = call.copy()
        with guard():
            results.append(fn(*call.args, **call.kwargs))
    return results


# ------------------------------------------------------------------------ the package itself


# the names programs.py had when it was one module; callers import them from the package
OLD_NAMES = (
    "CRUXEVAL_PATH", "CURATED_FUNCTIONS", "DATA_DIR", "KINDS", "MAX_DEPTH", "TYPES", "Call",
    "Program", "ProgramConfig", "RandomChoices", "build_program", "cruxeval_programs",
    "curated_modules", "generate_program", "generate_programs", "item_rng", "parse_arguments",
    "programs_from_directory", "programs_from_module", "random_value", "_load_spec",
)


def test_programs__the_old_module_names_import_from_the_package():
    from tracegym.tracers import programs

    assert [n for n in OLD_NAMES if not hasattr(programs, n)] == []
    assert set(programs.__all__) == set(OLD_NAMES) - {"_load_spec"}
    assert programs.CRUXEVAL_PATH.is_file()  # the data folder moved one level up from here


# ----------------------------------------------------------------------------- records.py


def test_program__inputs_normalised_and_run_copies_arguments():
    program = Program("p", "def f(xs):\n    xs.append(1)\n    return len(xs)\n", "f",
                      inputs=[([0],)])
    assert program.inputs == (Call(([0],)),)
    assert program.run() == 2 and program.run() == 2  # the stored input is not mutated


# ----------------------------------------------------------------------------- arguments.py


def test_parse_arguments__literals_and_keywords():
    assert parse_arguments("[1, 2], 'a', k=(3,)") == Call(([1, 2], "a"), {"k": (3,)})
    with pytest.raises(ValueError, match=re.escape("argument 'len(x)' in 'len(x)' is not a")):
        parse_arguments("len(x)")


# ------------------------------------------------------------ generator.py (builder, expressions)


@pytest.mark.parametrize("kind", KINDS)
def test_generate_program__compiles_and_terminates(kind):
    for index in range(150):
        program = generate_program(7, index, kind=kind)
        compile(program.source, program.filename, "exec")
        assert program.entry == "f" and len(program.inputs) == 3
        results = run_all(program)
        assert results == run_all(program), program.source  # same inputs, same results


@pytest.mark.parametrize("kind", KINDS)
def test_generate_program__deterministic_per_seed_and_index(kind):
    stream = list(generate_programs(3, 6, kind=kind))
    assert generate_program(3, 4, kind=kind) == stream[4]  # item 4 rebuilt alone
    assert [p.source for p in generate_programs(3, 6, kind=kind)] == [p.source for p in stream]
    assert len({p.source for p in stream}) > 1
    assert generate_program(4, 4, kind=kind).source != stream[4].source or kind == "straight_line"


def test_generate_program__docstring_pins_the_bytes_of_a_seed():
    # the docstring example is item 1 of seed 0: a change there changes every data set built
    import doctest

    from tracegym.tracers.programs import generator

    result = doctest.testmod(generator)
    assert result.attempted > 0 and result.failed == 0


def test_generate_program__accepts_a_random_generator():
    a = generate_program(random.Random(5), 2)
    b = generate_program(random.Random(5), 2)
    assert a == b and a.location == "rng index=2"


def test_generate_program__straight_line_has_no_loops_or_branches():
    for index in range(200):
        program = generate_program(1, index, kind="straight_line")
        tree = ast.parse(program.source)
        assert len(tree.body) == 1, program.source  # no helpers
        bad = [type(n).__name__ for n in ast.walk(tree) if isinstance(n, LOOPS + BRANCHES)]
        assert not bad, program.source


def test_generate_program__loops_kind_has_a_loop_and_no_branches():
    for index in range(200):
        program = generate_program(1, index, kind="loops")
        tree = ast.parse(program.source)
        assert len(tree.body) == 1, program.source
        assert any(isinstance(n, (ast.For, ast.While)) for n in ast.walk(tree)), program.source
        assert not any(isinstance(n, BRANCHES) for n in ast.walk(tree)), program.source


def test_generate_program__mixed_calls_every_helper_from_the_entry():
    kinds_seen = set()
    for index in range(200):
        tree = ast.parse(generate_program(2, index).source)
        *helpers, entry = tree.body
        assert entry.name == "f"
        called = {n.func.id for n in ast.walk(entry)
                  if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
        assert {h.name for h in helpers} <= called
        kinds_seen |= {type(n) for n in ast.walk(tree)}
        kinds_seen.add("helper" if helpers else "no helper")
    assert {ast.For, ast.While, ast.If, "helper", "no helper"} <= kinds_seen


def test_generate_program__statement_bounds():
    for index in range(100):
        program = generate_program(9, index, min_statements=3, max_statements=5)
        assert 3 <= program.meta["statements"] <= 5


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"kind": "loopy"}, "kind must be one of ('straight_line', 'loops', 'mixed'), got 'loopy'"),
    ({"min_statements": 0}, "need 1 <= min_statements <= max_statements <= 100, got "
                            "min_statements=0, max_statements=8"),
    ({"min_statements": 5, "max_statements": 4}, "min_statements=5, max_statements=4"),
    ({"kind": "loops", "min_statements": 1, "max_statements": 1},
     "kind='loops' needs max_statements >= 2"),
    ({"max_params": 0}, "max_params must be in 1..4, got 0"),
    ({"num_inputs": 2.5}, "num_inputs must be an int, got 2.5"),
    ({"seed": -1}, "seed must be in 0..2**63-1, got -1"),
    ({"seed": "a"}, "seed must be an int, got 'a'"),
    ({"index": -2}, "index must be >= 0, got -2"),
])
def test_generate_program__bad_arguments(kwargs, message):
    kwargs = {"seed": 0, "index": 0, **kwargs}
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_program(kwargs.pop("seed"), kwargs.pop("index"), **kwargs)


# ------------------------------------------------------------------- loaders.py: directory


@pytest.fixture
def user_dir(tmp_path):
    (tmp_path / "maths.py").write_text(
        "def gcd(a, b):\n    while b:\n        a, b = b, a % b\n    return a\n")
    (tmp_path / "words.py").write_text("def shout(s, times=1):\n    return s.upper() * times\n")
    (tmp_path / "broken.py").write_text("def f(:\n")
    return tmp_path


GOOD_SPEC = {"maths.py": {"gcd": ["12, 18", [7, 0]]},
             "words.py": {"shout": ["'hi'", "'a', times=3"]}}


def test_programs_from_directory__dict_json_and_toml_specs(user_dir):
    (user_dir / "spec.json").write_text(json.dumps(GOOD_SPEC))
    (user_dir / "spec.toml").write_text(
        '["maths.py"]\ngcd = ["12, 18", [7, 0]]\n'
        '["words.py"]\nshout = ["\'hi\'", "\'a\', times=3"]\n')
    for spec in (GOOD_SPEC, user_dir / "spec.json", str(user_dir / "spec.toml")):
        programs = programs_from_directory(user_dir, spec)
        assert [p.name for p in programs] == ["maths.gcd", "words.shout"]
        assert [run_all(p) for p in programs] == [[6, 7], ["HI", "AAA"]]
        assert programs[1].inputs[1] == Call(("a",), {"times": 3})
        assert programs[0].origin == "directory"


@pytest.mark.parametrize(("spec", "message"), [
    ({"nope.py": {"f": ["1"]}}, "spec['nope.py']: file not found"),
    ({"maths.py": {"lcm": ["1, 2"]}},
     "spec['maths.py']['lcm']: no top-level function 'lcm' in"),
    ({"maths.py": {"gcd": ["x, 2"]}},
     "spec['maths.py']['gcd'][0]: argument 'x' in 'x, 2' is not a Python literal"),
    ({"maths.py": {"gcd": "1, 2"}}, "spec['maths.py']['gcd']: inputs must be a list, got '1, 2'"),
    ({"maths.py": {"gcd": [3]}}, "spec['maths.py']['gcd'][0]: an input is an argument-list "
                                 "string or a list of arguments, got 3"),
    ({"maths.py": {"gcd": ["1, ("]}}, "spec['maths.py']['gcd'][0]: not an argument list"),
    ({"maths.py": []}, "spec['maths.py']: must be a non-empty table of entry -> inputs"),
    ({"broken.py": {"f": []}}, "broken.py': does not parse: line 1"),
])
def test_programs_from_directory__bad_specs(user_dir, spec, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        programs_from_directory(user_dir, spec)


def test_programs_from_directory__bad_paths(user_dir):
    with pytest.raises(ValueError, match=re.escape("spec: file not found")):
        programs_from_directory(user_dir, user_dir / "missing.json")
    with pytest.raises(ValueError, match=re.escape("path: not a directory")):
        programs_from_directory(user_dir / "maths.py", GOOD_SPEC)
    (user_dir / "bad.json").write_text("{")
    with pytest.raises(ValueError, match=re.escape("bad.json': cannot parse")):
        programs_from_directory(user_dir, user_dir / "bad.json")


# ------------------------------------------------------------------- loaders.py: modules


@pytest.mark.parametrize("module", curated_modules())
def test_programs_from_module__curated_functions_run(module):
    programs = programs_from_module(module, seed=1)
    assert {p.entry for p in programs} == {f for m, f in CURATED_FUNCTIONS if m == module}
    for program in programs:
        assert hasattr(program.load(), "__code__")  # pure Python, so the tracer sees its lines
        assert f"def {program.entry}(" in program.source
        run_all(program)
    assert programs == programs_from_module(module, seed=1)


def test_programs_from_module__errors(monkeypatch):
    with pytest.raises(ValueError, match=re.escape("no curated functions for 'nosuch'")):
        programs_from_module("nosuch")
    with pytest.raises(ValueError, match=re.escape("heapq.heappush is not curated")):
        programs_from_module("heapq", ["heappush"])
    monkeypatch.setitem(CURATED_FUNCTIONS, ("bisect", "bisect_left"),
                        lambda c: Call(([1, 2], 1)))
    with pytest.raises(ValueError, match=re.escape("bisect.bisect_left is not pure Python")):
        programs_from_module("bisect")


# ------------------------------------------------------------------- loaders.py: CRUXEval


@pytest.fixture(scope="module")
def cruxeval():
    return cruxeval_programs()


def test_cruxeval__all_800_load(cruxeval):
    assert len(cruxeval) == 800 and len({p.name for p in cruxeval}) == 800
    assert all(p.entry == "f" and len(p.inputs) == 1 and p.outputs for p in cruxeval)
    (sample,) = cruxeval_programs(ids=["sample_258"])  # its input names a global of the code
    assert sample.inputs[0].args[1:] == (3, 3, 2)


def test_cruxeval__running_each_reproduces_its_output(cruxeval):
    wrong = []
    for program in cruxeval:
        try:
            with guard(2.0):
                result = program.run(0)
        except Exception as err:  # recorded as a mismatch, with the error
            wrong.append((program.name, repr(err)))
            continue
        expected = program.outputs[0]
        # repr first; equality covers reprs that vary (set order, float formatting)
        if repr(result) != expected and eval(expected) != result:
            wrong.append((program.name, repr(result)))
    assert not wrong, wrong[:10]


def test_cruxeval__unknown_id():
    with pytest.raises(ValueError, match=re.escape("ids: not in")):
        cruxeval_programs(ids=["sample_9999"])
