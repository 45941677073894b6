"""ARC's sizes and colours, shared by the task loader, the generator, the edits, the tokens and
the env."""

MAX_SIDE = 30  # cells per side of an ARC grid, and TRM's token canvas is MAX_SIDE x MAX_SIDE
NUM_COLOURS = 10  # colours 0..9
BG = 0  # the background colour (black), kept fixed by TRM's colour permutations
MAX_DEMOS = 10  # the most demonstration pairs the env's observation holds
