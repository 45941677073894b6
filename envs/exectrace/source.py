"""Episodes for ExecTrace: where programs come from, and one traced call cut into frame texts.

An :class:`Episode` is a program, one of its calls, the in-process trace of that call, and the
trace's CWM text split into the header (``<|trace_context_start|>`` context ``<|frame_sep|>``)
and one text per frame, so ``header + "".join(frame_texts) == trace.to_cwm()``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from tracegym.tracers import Trace, TraceOptions, Tracer
from tracegym.tracers.cwm import FRAME_SEP, TRACE_CONTEXT_START, scrub_addresses
from tracegym.tracers.programs import KINDS, Call, Program, cruxeval_programs, generate_program

PROGRAM_SOURCES = ("generated", "cruxeval")

ProgramSource = Callable[[np.random.Generator], Program]


@functools.lru_cache(maxsize=1)
def _cruxeval() -> tuple[Program, ...]:
    return tuple(cruxeval_programs())


def make_program_source(programs, kind: str = "mixed") -> ProgramSource:
    """The env's ``programs=`` option as a function ``rng -> Program``.

    ``"generated"``: a fresh generated program of ``kind`` per draw (its generator seed drawn
    from ``rng``); ``"cruxeval"``: uniform over the 800 CRUXEval functions; a list of
    :class:`Program`: uniform over it; a callable ``rng -> Program``: called as is.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {list(KINDS)}, got {kind!r}")
    if isinstance(programs, str):
        if programs == "generated":
            return lambda rng: generate_program(int(rng.integers(2**62)), 0, kind=kind)
        if programs == "cruxeval":
            return lambda rng: _pick(_cruxeval(), rng)
        raise ValueError(f"programs must be one of {list(PROGRAM_SOURCES)}, a list of "
                         f"Program or a callable rng -> Program, got {programs!r}")
    if isinstance(programs, Program):
        programs = [programs]
    if callable(programs):
        return programs
    if isinstance(programs, Sequence):
        items = tuple(programs)
        if not items:
            raise ValueError("programs: the list is empty")
        for i, p in enumerate(items):
            if not isinstance(p, Program):
                raise ValueError(f"programs[{i}]: expected a Program, got {type(p).__name__}")
            if not p.inputs:
                raise ValueError(f"programs[{i}] ({p.name!r}): has no inputs to call it with")
        return lambda rng: _pick(items, rng)
    raise ValueError(f"programs must be one of {list(PROGRAM_SOURCES)}, a list of Program or "
                     f"a callable rng -> Program, got {type(programs).__name__}")


def _pick(items: Sequence[Program], rng: np.random.Generator) -> Program:
    return items[int(rng.integers(len(items)))]


def call_text(entry: str, call: Call) -> str:
    """``f(1, [2], key='x')``: the call as Python source."""
    args = [repr(a) for a in call.args] + [f"{k}={v!r}" for k, v in call.kwargs.items()]
    return f"{entry}({', '.join(args)})"


@dataclass(frozen=True)
class Episode:
    program: Program
    call: Call
    trace: Trace
    header: str  # <|trace_context_start|> marked context <|frame_sep|>
    frame_texts: tuple[str, ...]  # frame t's CWM text, event token through <|frame_sep|>
    answer: str  # the return value's repr, or the exception's repr for a raising call

    @property
    def call_text(self) -> str:
        return call_text(self.program.entry, self.call)

    @property
    def answer_prompt(self) -> str:
        """Answer-mode observation: the source, a blank line, then the call."""
        return f"{self.program.source.rstrip()}\n\n{self.call_text}\n"


def frame_texts(trace: Trace) -> tuple[str, tuple[str, ...]]:
    """``(header, texts)`` of a trace's CWM text, frame by frame.

    Not a split on ``<|frame_sep|>``: a traced string value may hold that text. A frame's text
    depends only on the frame before it (``".."`` for unchanged values), so frame t's text is
    the CWM text of ``[t-1, t]`` less that of ``[t-1]`` alone.
    """
    def body(frames) -> str:
        text = Trace(entry="", context="", frames=list(frames)).to_cwm()
        return text[len(TRACE_CONTEXT_START) + len(FRAME_SEP):]

    header = Trace(entry=trace.entry, context=trace.context, frames=[],
                   entry_lineno=trace.entry_lineno, context_lineno=trace.context_lineno).to_cwm()
    fs = trace.frames
    texts = [body(fs[:1])] if fs else []
    texts += [body(fs[t - 1:t + 1])[len(body(fs[t - 1:t])):] for t in range(1, len(fs))]
    return header, tuple(texts)


def make_episode(program: Program, rng: np.random.Generator, tracer: Tracer) -> Episode:
    """Trace one of ``program``'s calls (drawn with ``rng``) into an :class:`Episode`."""
    if not program.inputs:
        raise ValueError(f"program {program.name!r}: has no inputs to call it with")
    call = program.inputs[int(rng.integers(len(program.inputs)))]
    args = call.copy()
    # object addresses written as the trace dataset writes them: the text a model trained on
    trace = scrub_addresses(tracer.trace(program.load(), *args.args, **args.kwargs))
    header, texts = frame_texts(trace)  # the cut loses nothing: tests check it, not each reset
    answer = trace.exception_repr if trace.exception_repr is not None else trace.return_repr
    return Episode(program, call, trace, header, texts, answer or "")


def default_tracer(max_frames: int) -> Tracer:
    return Tracer(TraceOptions(max_events=max_frames))
