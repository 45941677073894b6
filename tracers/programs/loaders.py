"""Programs that exist already: user files listed by a spec, functions of installed modules,
and the CRUXEval benchmark.

- :func:`programs_from_directory`: user ``.py`` files and a ``.json``/``.toml`` spec naming each
  file's entry functions and their inputs (argument-list strings, see ``arguments.py``);
- :func:`programs_from_module`: curated pure-Python functions of the standard library
  (:data:`CURATED_FUNCTIONS`, each with a generator of inputs) as "real code";
- :func:`cruxeval_programs`: the 800 CRUXEval functions with their recorded input and output.

Errors name the file or field and the value (``ValueError``).
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib
import inspect
import json
import random
import textwrap
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tracegym.checks import check_seed
from tracegym.tracers.programs.arguments import parse_arguments
from tracegym.tracers.programs.generator import RandomChoices, random_value
from tracegym.tracers.programs.records import Call, Program

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # tracers/data
CRUXEVAL_PATH = DATA_DIR / "cruxeval" / "cruxeval.jsonl"

# ----------------------------------------------------------------------------- user directory


def _load_spec(spec) -> tuple[dict, str]:
    if isinstance(spec, Mapping):
        return dict(spec), "spec"
    path = Path(spec)
    if not path.is_file():
        raise ValueError(f"spec: file not found: {str(path)!r}")
    text = path.read_text()
    if path.suffix == ".toml":
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10: the backport, a dependency there
            import tomli as tomllib
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
    except Exception as err:  # JSONDecodeError / TOMLDecodeError
        raise ValueError(f"spec {str(path)!r}: cannot parse: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"spec {str(path)!r}: top level must be a table of files, "
                         f"got {type(data).__name__}")
    return data, f"spec {str(path)!r}"


def programs_from_directory(path, spec) -> list[Program]:
    """Programs from user ``.py`` files in ``path``, as listed by ``spec``.

    ``spec`` is a dict, or a ``.json``/``.toml`` file holding one, mapping each file name
    (relative to ``path``) to its entry functions and their inputs::

        # spec.toml
        ["sorting.py"]
        bubble = ["[3, 1, 2]", "[]"]       # each string: an argument list of Python literals
        ["maths.py"]
        gcd = ["12, 18", "a=7, b=0"]

    An input may also be a JSON/TOML array, taken as the positional arguments. Errors name the
    file and the field: a missing file, a file that does not parse, an entry that is not a
    top-level function of the file, inputs that are not a list or not literals.
    """
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"path: not a directory: {str(root)!r}")
    data, where = _load_spec(spec)
    programs = []
    for file_name, entries in data.items():
        field_name = f"{where}[{file_name!r}]"
        file = root / file_name
        if not file.is_file():
            raise ValueError(f"{field_name}: file not found: {str(file)!r}")
        if not isinstance(entries, Mapping) or not entries:
            raise ValueError(f"{field_name}: must be a non-empty table of entry -> inputs, "
                             f"got {entries!r}")
        source = file.read_text()
        try:
            tree = ast.parse(source, str(file))
        except SyntaxError as err:
            raise ValueError(f"{str(file)!r}: does not parse: line {err.lineno}: "
                             f"{err.msg}") from None
        defined = {n.name for n in tree.body
                   if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        for entry, inputs in entries.items():
            entry_field = f"{field_name}[{entry!r}]"
            if entry not in defined:
                raise ValueError(f"{entry_field}: no top-level function {entry!r} in "
                                 f"{str(file)!r} (found {sorted(defined)})")
            if not isinstance(inputs, list):
                raise ValueError(f"{entry_field}: inputs must be a list, got {inputs!r}")
            calls = []
            for i, item in enumerate(inputs):
                if isinstance(item, str):
                    calls.append(parse_arguments(item, field_name=f"{entry_field}[{i}]"))
                elif isinstance(item, list):
                    calls.append(Call(tuple(item)))
                else:
                    raise ValueError(f"{entry_field}[{i}]: an input is an argument-list string "
                                     f"or a list of arguments, got {item!r}")
            programs.append(Program(
                name=f"{Path(file_name).stem}.{entry}", source=source, entry=entry,
                inputs=tuple(calls), origin="directory", location=str(file)))
    return programs


# ----------------------------------------------------------------------------- installed modules


def _short_text(c):
    words = ["alpha", "beta", "gamma", "delta", "  lead", "x", "tail  "]
    return " ".join(c.choice(words) for _ in range(c.integer(1, 6)))


def _indented_text(c):
    pad = " " * c.integer(0, 4)
    return "\n".join(pad + c.choice(["ab", "cd ef", "", "  g"]) for _ in range(c.integer(1, 4)))


def _unit(c):
    return c.integer(0, 10) / 10


def _path(c):
    return c.choice(["", "/"]) + "/".join(c.choice(["a", "b", ".", "..", "c.txt"])
                                           for _ in range(c.integer(1, 4)))


# (module, function) -> a function of a choices object returning one Call
CURATED_FUNCTIONS: dict[tuple[str, str], Callable[[object], Call]] = {
    ("textwrap", "dedent"): lambda c: Call((_indented_text(c),)),
    ("textwrap", "indent"): lambda c: Call((_indented_text(c), c.choice(["> ", "# ", "  "]))),
    ("textwrap", "wrap"): lambda c: Call((_short_text(c), c.integer(5, 20))),
    ("textwrap", "shorten"): lambda c: Call((_short_text(c), c.integer(8, 30))),
    ("colorsys", "rgb_to_hsv"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "hsv_to_rgb"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "rgb_to_hls"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "hls_to_rgb"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("colorsys", "rgb_to_yiq"): lambda c: Call((_unit(c), _unit(c), _unit(c))),
    ("string", "capwords"): lambda c: Call((_short_text(c),)),
    ("heapq", "nlargest"): lambda c: Call((c.integer(0, 4), random_value(c, "list"))),
    ("heapq", "nsmallest"): lambda c: Call((c.integer(0, 4), random_value(c, "list"))),
    # (posixpath is frozen in 3.11: no source lines, so it is not curated)
    ("shlex", "split"): lambda c: Call((c.choice(["a b", "'a b' c", 'x "y z"', ""]),)),
    ("fnmatch", "translate"): lambda c: Call((c.choice(["a*", "*.py", "[ab]?", "x"]),)),
    ("difflib", "get_close_matches"): lambda c: Call((
        random_value(c, "str"), [random_value(c, "str") for _ in range(c.integer(0, 4))])),
    ("urllib.parse", "quote"): lambda c: Call((_path(c) + c.choice(["", " x", "?a=1&b"]),)),
    ("calendar", "isleap"): lambda c: Call((c.integer(1890, 2030),)),
    ("calendar", "leapdays"): lambda c: Call((c.integer(1890, 1990), c.integer(1990, 2100))),
    ("calendar", "weekday"): lambda c: Call((c.integer(1970, 2030), c.integer(1, 12),
                                             c.integer(1, 28))),
    ("statistics", "median"): lambda c: Call(([c.integer(0, 9)
                                               for _ in range(c.integer(1, 5))],)),
    ("statistics", "mode"): lambda c: Call(([c.integer(0, 3) for _ in range(c.integer(1, 5))],)),
    ("fnmatch", "fnmatchcase"): lambda c: Call((random_value(c, "str"),
                                                c.choice(["a*", "*b?", "[abc]*", "*"]))),
    ("html", "escape"): lambda c: Call((c.choice(["<a>", "x & y", "'q'", "plain"]),)),
    ("shlex", "quote"): lambda c: Call((c.choice(["", "abc", "a b", "it's"]),)),
}


def curated_modules() -> list[str]:
    """Module names with curated functions for :func:`programs_from_module`."""
    return sorted({m for m, _ in CURATED_FUNCTIONS})


def programs_from_module(module_name: str, functions: Sequence[str] | None = None, *,
                         seed: int = 0, num_inputs: int = 3) -> list[Program]:
    """Pure-Python functions of an installed module as programs ("real code").

    ``functions`` defaults to every curated function of the module (see ``CURATED_FUNCTIONS``;
    each has an input generator). Inputs are drawn from an RNG seeded by ``(seed, function)``.
    ``source`` is the function's own source text; it reads the module's globals, so
    ``Program.load()`` imports the real function (``Program.module`` names the module).
    A function without ``__code__`` (a C builtin) or without source raises ValueError.
    """
    seed = check_seed(seed)
    known = {f for m, f in CURATED_FUNCTIONS if m == module_name}
    if not known:
        raise ValueError(f"module_name: no curated functions for {module_name!r}; "
                         f"known modules: {curated_modules()}")
    names = sorted(known) if functions is None else list(functions)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ValueError(f"module_name: cannot import {module_name!r}: {err}") from None
    programs = []
    for name in names:
        if name not in known:
            raise ValueError(f"functions: {module_name}.{name} is not curated; "
                             f"known: {sorted(known)}")
        fn = getattr(module, name, None)
        if not hasattr(fn, "__code__"):
            raise ValueError(f"functions: {module_name}.{name} is not pure Python "
                             f"(no __code__): {fn!r}")
        try:
            source = textwrap.dedent(inspect.getsource(fn))
        except (OSError, TypeError) as err:
            raise ValueError(f"functions: no source for {module_name}.{name}: {err}") from None
        digest = hashlib.sha256(f"{seed}/{module_name}.{name}".encode()).digest()
        choices = RandomChoices(random.Random(int.from_bytes(digest[:8], "little")))
        make = CURATED_FUNCTIONS[(module_name, name)]
        programs.append(Program(
            name=f"{module_name}.{name}", source=source, entry=name,
            inputs=tuple(make(choices) for _ in range(num_inputs)), origin="module",
            location=f"{module_name}.{name} ({inspect.getsourcefile(fn)})",
            module=module_name))
    return programs


# ----------------------------------------------------------------------------- CRUXEval


def cruxeval_programs(path=None, *, ids: Sequence[str] | None = None) -> list[Program]:
    """The 800 CRUXEval functions (Gu et al., 2024; MIT), each with its one input and output.

    ``entry`` is ``f``; ``inputs`` holds one :class:`Call`, evaluated after executing the code
    because a few inputs name the program's globals (sample_258); ``outputs[0]`` is the recorded
    ``repr`` of the result. ``meta`` keeps the raw ``input`` text. ``ids`` selects samples.
    """
    path = Path(path) if path is not None else CRUXEVAL_PATH
    wanted = set(ids) if ids is not None else None
    programs = []
    with open(path) as fh:
        for line_no, line in enumerate(fh, 1):
            if not line.strip():
                continue
            row = json.loads(line)
            if wanted is not None and row["id"] not in wanted:
                continue
            program = Program(name=row["id"], source=row["code"], entry="f", origin="cruxeval",
                              location=f"{path.name}:{line_no}", outputs=(row["output"],),
                              meta={"input": row["input"]})
            call = parse_arguments(row["input"], program.namespace(),
                                   field_name=f"{row['id']} input", literal=False)
            programs.append(dataclasses.replace(program, inputs=(call,)))
    if wanted is not None and len(programs) != len(wanted):
        missing = sorted(wanted - {p.name for p in programs})
        raise ValueError(f"ids: not in {str(path)!r}: {missing[:5]}")
    return programs
