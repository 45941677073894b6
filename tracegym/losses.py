"""The answer losses a reasoner trains with, by name: ``"stablemax"`` (TRM's, the default of the
puzzle reasoners) and ``"softmax"``.

One list for the reasoner configs (``tracegym.agents.reasoners.config``; ``token_loss`` in
``tracegym.agents.reasoners.base`` implements them) and for ``TrainConfig.loss``
(``tracegym.training.config``). It lives in the core layer because both import it and neither
may pull in the other: an agents module imports torch, and ``tracegym train --help`` must not.
"""

LOSSES = ("stablemax", "softmax")
