"""Where traced programs come from: a seeded generator, user files, installed modules, CRUXEval.

Every source yields :class:`Program` records: the source text, the entry function's name, a few
calls (:class:`Call`) to run it with, and where it came from. The tracer and its sandbox take
``(program.source, program.entry, call.args)``; ``program.load()`` gives the function in-process.

Everything is imported from here (``from tracegym.tracers.programs import generate_program``);
each piece lives in its own module:

- ``records.py``: :class:`Program` and :class:`Call`;
- ``generator.py``: :func:`generate_program` / :func:`generate_programs` and
  :class:`ProgramConfig`, the seeded generator of small terminating functions (its docstring
  lists what makes every program valid), built by ``builder.py`` (statements and functions) on
  ``expressions.py`` (names and the expressions of each type);
- ``loaders.py``: :func:`programs_from_directory` (user files and a spec),
  :func:`programs_from_module` (curated standard-library functions) and
  :func:`cruxeval_programs`;
- ``arguments.py``: :func:`parse_arguments`, argument lists written as text.
"""

from tracegym.tracers.programs.arguments import parse_arguments
from tracegym.tracers.programs.expressions import MAX_DEPTH, TYPES
from tracegym.tracers.programs.generator import (
    KINDS,
    ProgramConfig,
    RandomChoices,
    build_program,
    generate_program,
    generate_programs,
    item_rng,
    random_value,
)
from tracegym.tracers.programs.loaders import (
    CRUXEVAL_PATH,
    CURATED_FUNCTIONS,
    DATA_DIR,
    cruxeval_programs,
    curated_modules,
    programs_from_directory,
    programs_from_module,
)

# _load_spec: for datasets/traces_programs.py
from tracegym.tracers.programs.loaders import _load_spec as _load_spec
from tracegym.tracers.programs.records import Call, Program

__all__ = [
    "CRUXEVAL_PATH",
    "CURATED_FUNCTIONS",
    "DATA_DIR",
    "KINDS",
    "MAX_DEPTH",
    "TYPES",
    "Call",
    "Program",
    "ProgramConfig",
    "RandomChoices",
    "build_program",
    "cruxeval_programs",
    "curated_modules",
    "generate_program",
    "generate_programs",
    "item_rng",
    "parse_arguments",
    "programs_from_directory",
    "programs_from_module",
    "random_value",
]
