"""tracegym.agents: filled in by later issues."""
