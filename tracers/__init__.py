"""tracegym.tracers: filled in by later issues."""
