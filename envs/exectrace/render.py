"""Readable text of an ExecTrace episode (``render_mode="ansi"``)."""

from __future__ import annotations

from tracegym.tracers import Frame

from .source import Episode

_SOURCE_WIDTH = 36


def frame_line(index: int, frame: Frame) -> str:
    """One frame as ``  3 line      x = y + 1        x=1 y=2`` (locals before the line)."""
    indent = "  " * frame.depth
    source = (indent + frame.source.strip())[:_SOURCE_WIDTH]
    if frame.event in ("call", "line"):
        state = " ".join(f"{k}={v}" for k, v in frame.locals.items())
    else:
        state = f"-> {frame.arg}"
    return f"{index:>4} {frame.event:<9} {source:<{_SOURCE_WIDTH}} {state}".rstrip()


def render_episode(episode: Episode, shown: int, mode: str, prediction: str | None) -> str:
    """The call, then the first ``shown`` frames (step mode) or the answer (answer mode)."""
    lines = [f"program {episode.program.name}: {episode.call_text}"]
    if mode == "step":
        frames = episode.trace.frames
        lines += [frame_line(i, f) for i, f in enumerate(frames[:shown])]
        lines.append(f"[{shown}/{len(frames)} frames]")
    else:
        lines += episode.program.source.rstrip().split("\n")
        if prediction is not None:
            lines += [f"predicted: {prediction}", f"actual:    {episode.answer}"]
    if prediction is not None and mode == "step":
        lines.append(f"last prediction: {prediction!r}")
    return "\n".join(lines) + "\n"
