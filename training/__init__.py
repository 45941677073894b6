"""tracegym.training: filled in by later issues."""
