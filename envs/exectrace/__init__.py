"""ExecTrace: predict a Python program's execution trace (CWM frames) or its result.

Importing this package registers ``tracegym/ExecTrace-v0``; programs are generated or loaded
(CRUXEval) when an env is made, the heavy modules on first use.
"""

from gymnasium.envs.registration import register

# tracegym/ExecTrace-v0: generated "mixed" programs, step mode (predict the next CWM frame,
# teacher-forced), text observations of at most 32768 chars, traces of at most 1000 frames, no
# max_steps; options programs, kind, mode, obs_format, max_length, max_tokens, max_frames,
# max_steps, render_mode.
register(id="tracegym/ExecTrace-v0", entry_point="tracegym.envs.exectrace.env:ExecTraceEnv")

# Public names, loaded on first access so `import tracegym` stays light.
_EXPORTS = {
    "ExecTraceEnv": "env", "copy_previous_frame_prediction": "env",
    "make_program_source": "source", "frame_texts": "source",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
