"""ExecTrace: predict a Python program's execution trace (CWM frames) or its result.

Importing this package registers ``tracegym/ExecTrace-v0``; programs are generated or loaded
(CRUXEval) when an env is made.
"""

from gymnasium.envs.registration import register

# tracegym/ExecTrace-v0: generated "mixed" programs, step mode (predict the next CWM frame,
# teacher-forced), text observations of at most 32768 chars, traces of at most 1000 frames, no
# max_steps; options programs, kind, mode, obs_format, max_length, max_tokens, max_frames,
# max_steps, render_mode.
register(id="tracegym/ExecTrace-v0", entry_point="tracegym.envs.exectrace.env:ExecTraceEnv")

__all__ = ["ExecTraceEnv", "copy_previous_frame_prediction"]


def __getattr__(name: str):
    if name in __all__:
        from . import env

        return getattr(env, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
