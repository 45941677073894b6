"""The trace dataset's options and programs: what ``build_trace_dataset`` checks before anything
runs, the programs of a source, and the train/test split of a program.

Part of :mod:`tracegym.datasets.traces` (the builder, the layout and the sources are described
there); its steps live in ``traces_programs`` (this module), ``traces_calls`` and
``traces_writer``.
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
from dataclasses import dataclass
from pathlib import Path

from tracegym.checks import check_int
from tracegym.errors import TracegymError

from .common import check_shard, stream_seed, user_options

SOURCES = ("generated", "cruxeval")
PROGRAM_STREAM = 0  # stream_seed(seed, PROGRAM_STREAM) seeds the generated programs
DEFAULT_GENERATED = 100  # programs of a generated source when ``n`` is unset


@dataclass(frozen=True)
class BuildOptions:
    """``build_trace_dataset``'s arguments, checked, with their defaults resolved.

    ``source`` is how ``meta.json`` names the source (the kind, or the directory as given);
    ``source_kind`` is generated, cruxeval or directory, ``folder`` the directory (else None).
    ``n`` is None only for a source of unknown size (all of its programs).
    """

    source: str
    source_kind: str
    folder: Path | None
    spec: object
    n: int | None
    seed: int
    kind: str
    size: dict  # generate_program's options: max_statements, max_params
    shard: tuple[int, int]
    max_events: int
    sandbox: bool
    inputs_per_program: int | None
    test_fraction: float
    timeout: float
    workers: int


def resolve_options(*, source, spec, n, seed, kind, shard, max_events, sandbox,
                    inputs_per_program, test_fraction, timeout, workers, max_statements,
                    max_params) -> BuildOptions:
    """The checked options; TracegymError naming the argument for bad input."""
    from tracegym.tracers.programs import KINDS, ProgramConfig

    source_kind, folder = _resolve_source(source, spec)
    if n is not None:
        n = check_int("n", n, 1)
    elif source_kind == "generated":
        n = DEFAULT_GENERATED
    seed = check_int("seed", seed, 0)
    if kind not in KINDS:
        raise TracegymError(f"kind must be one of {KINDS}, got {kind!r}")
    size = {"max_statements": check_int("max_statements", max_statements, 2),
            "max_params": check_int("max_params", max_params, 1)}
    with user_options():
        ProgramConfig(kind=kind, **size).validate()  # the generator's own limits
    shard = check_shard(shard)
    max_events = check_int("max_events", max_events, 1)
    if inputs_per_program is not None:
        inputs_per_program = check_int("inputs_per_program", inputs_per_program, 1)
    if isinstance(test_fraction, bool) or not isinstance(test_fraction, (int, float)) \
            or not 0 <= test_fraction <= 1:
        raise TracegymError(f"test_fraction must be a number in 0..1, got {test_fraction!r}")
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) \
            or not math.isfinite(timeout) or timeout <= 0:
        raise TracegymError(f"timeout must be a number of seconds > 0, got {timeout!r}")
    workers = check_int("workers", workers, 1)
    if sandbox is None:
        sandbox = source_kind == "directory"
    elif not isinstance(sandbox, bool):
        raise TracegymError(f"sandbox must be True, False or None, got {sandbox!r}")
    return BuildOptions(
        source=source_kind if folder is None else str(source), source_kind=source_kind,
        folder=folder, spec=spec, n=n, seed=seed, kind=kind, size=size, shard=shard,
        max_events=max_events, sandbox=sandbox, inputs_per_program=inputs_per_program,
        test_fraction=test_fraction, timeout=float(timeout), workers=workers)


def _resolve_source(source, spec) -> tuple[str, Path | None]:
    """``(kind, directory)``: kind is generated, cruxeval or directory."""
    if source in SOURCES:
        if spec is not None:
            raise TracegymError(f"spec: only a directory source takes a spec, got "
                                f"spec={str(spec)!r} with source={source!r}")
        return source, None
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        raise TracegymError(f"source: expected 'generated', 'cruxeval' or a directory, got "
                            f"{source!r}" + (" (no such directory)" if isinstance(source, str)
                                             else ""))
    if spec is None:
        raise TracegymError(f"spec: a directory source needs a spec file (--spec) listing its "
                            f"entries and inputs, got none for source={str(source)!r}")
    return "directory", Path(source)


def list_programs(kind: str, folder, spec, *, n, seed, program_kind, inputs_per_program,
                  lo: int, hi: int | None, size: dict) -> tuple[list, int]:
    """``(programs, size)``: generated programs ``lo..hi-1`` and ``n``; for the other sources
    their first ``n`` (or all) programs and that count, which the caller then shards."""
    from tracegym.tracers.programs import cruxeval_programs, generate_program

    if kind == "generated":
        derived = stream_seed(seed, PROGRAM_STREAM)
        num_inputs = 3 if inputs_per_program is None else inputs_per_program
        return [generate_program(derived, i, kind=program_kind, num_inputs=num_inputs, **size)
                for i in range(lo, hi)], n
    found = cruxeval_programs() if kind == "cruxeval" else _directory_programs(folder, spec)
    total = len(found) if n is None else min(n, len(found))
    return found[:total], total


def _directory_programs(folder: Path, spec) -> list:
    """:func:`~tracegym.tracers.programs.programs_from_directory`, file by file, except that a
    file that does not parse still gives one program per listed entry, so each of its calls gets
    a ``syntax_error`` record instead of stopping the build. Other spec errors (a missing file
    or entry, bad inputs) still raise, before anything runs."""
    from tracegym.tracers.programs import _load_spec, programs_from_directory

    with user_options():  # a missing or malformed spec file
        data, where = _load_spec(spec)
    programs = []
    for file_name, entries in data.items():
        file = folder / file_name
        try:
            source = file.read_text()
            ast.parse(source, str(file))
        except SyntaxError:
            programs += _unparsable_programs(file, source, entries, f"{where}[{file_name!r}]")
            continue
        except (OSError, ValueError):
            pass  # a missing or unreadable file: programs_from_directory names it
        try:
            programs += programs_from_directory(folder, {file_name: entries})
        except ValueError as err:  # its messages start "spec[...]": name the user's spec file
            message = str(err)
            raise TracegymError(where + message[len("spec"):] if message.startswith("spec[")
                                else message) from None
    return programs


def _unparsable_programs(file: Path, source: str, entries, field_name: str) -> list:
    """The programs of a file that does not parse: its listed entries and their calls."""
    from tracegym.tracers.programs import Call, Program, parse_arguments

    if not isinstance(entries, dict) or not entries:
        raise TracegymError(f"{field_name}: must be a non-empty table of entry -> inputs, "
                            f"got {entries!r}")
    programs = []
    for entry, inputs in entries.items():
        entry_field = f"{field_name}[{entry!r}]"
        if not isinstance(inputs, list):
            raise TracegymError(f"{entry_field}: inputs must be a list, got {inputs!r}")
        calls = []
        for i, item in enumerate(inputs):
            if isinstance(item, list):
                calls.append(Call(tuple(item)))
                continue
            if not isinstance(item, str):
                raise TracegymError(f"{entry_field}[{i}]: an input is an argument-list string "
                                    f"or a list of arguments, got {item!r}")
            try:
                calls.append(parse_arguments(item, field_name=f"{entry_field}[{i}]"))
            except ValueError as err:
                raise TracegymError(str(err)) from None
        # named as programs_from_directory names them
        programs.append(Program(name=f"{file.stem}.{entry}", source=source, entry=entry,
                                inputs=tuple(calls), origin="directory", location=str(file)))
    return programs


def split_of(seed: int, source: str, test_fraction: float) -> str:
    """``"test"`` when a hash of ``(seed, source)`` falls below ``test_fraction``, else
    ``"train"``: every program with one source lands in one split."""
    digest = hashlib.sha256(f"tracegym.traces.split/{seed}/".encode() + source.encode()).digest()
    return "test" if int.from_bytes(digest[:8], "little") / 2**64 < test_fraction else "train"
