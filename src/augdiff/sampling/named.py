"""The samplers by name, as ``augdiff bench sample --sampler`` and ``augdiff run samplers`` list them.

Each name maps to the options of :func:`augdiff.sampling.generate` that select it: ``ancestral`` (none),
a confidence ordering (LLaDA), a ReMDM strategy or the flow-matching corrector with the settings the ReMDM
authors' scripts use (``scripts/remdm-*.sh``: η = 0.008 for cap, 0.015 for rescale, 0.02 for loop with
t_on = 0.55, t_off = 0.05, α_on = 0.9).
"""

from __future__ import annotations

from typing import Any

from augdiff.sampling.ordering import ORDERINGS
from augdiff.sampling.remasking import REMASKING, Remasking

__all__ = ["SAMPLERS", "REFERENCE_ETA", "sampler_options"]

SAMPLERS = ("ancestral", *ORDERINGS[1:], *REMASKING)
REFERENCE_ETA = {"cap": 0.008, "rescale": 0.015, "loop": 0.02}


def sampler_options(name: str) -> dict[str, Any]:
    """The :func:`~augdiff.sampling.generate` options of the sampler called ``name``."""
    if name == "ancestral":
        return {}
    if name in ORDERINGS:
        return {"ordering": name}
    if name in REMASKING:
        return {"remasking": Remasking(name, eta=REFERENCE_ETA.get(name, 0.02))}
    raise ValueError(f"unknown sampler {name!r} (choose one of: {', '.join(SAMPLERS)})")
