"""What metrics, experiments and the command line read from a model, autoregressive or diffusion.

:class:`~augdiff.model.DiffusionModel` and :class:`~augdiff.ar.ARModel` both satisfy :class:`SequenceModel`, so
code above the core takes a model and asks it, instead of telling the two kinds apart.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol

import torch
from torch import Tensor

from augdiff.losses import LossOutput

__all__ = ["SequenceModel"]


class SequenceModel(Protocol):
    """A generative model of token sequences: training loss, likelihood (exact or a bound), sampling, FLOPs."""

    #: True when :meth:`sequence_nll` is −log p(x) itself (the chain rule), False for an estimate of a bound
    exact_likelihood: ClassVar[bool]
    #: True when :meth:`sample` runs a number of reverse steps on a device (diffusion), False when it draws one
    #: token at a time and takes no step count (autoregressive)
    takes_steps: ClassVar[bool]
    vocab_size: int
    training: bool

    def train(self, mode: bool = True) -> Any:
        """As :meth:`torch.nn.Module.train` (the models are modules)."""
        ...

    def eval(self) -> Any:
        """As :meth:`torch.nn.Module.eval`."""
        ...

    @property
    def nll_kind(self) -> str:
        """What :meth:`sequence_nll` is, in words, for reports."""
        ...

    @property
    def token_term_is_bound(self) -> bool:
        """Whether the token term alone bounds −log p(x) (MDLM; an AR model has no masked token term)."""
        ...

    @property
    def has_bound(self) -> bool:
        """Whether :mod:`augdiff.metrics.bound` derives a true bound with every latent term for this model."""
        ...

    def loss(
        self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None, *, fixed: Tensor | None = None
    ) -> LossOutput:
        """The training loss on clean tokens ``x0`` ``[B, L]`` at diffusion times ``t`` ``[B]``; ``fixed``
        ``[B, L]``: positions given and never scored (an SFT prompt)."""
        ...

    def settle(self) -> dict[str, dict[str, Any]]:
        """Settings measured from the network when training starts, by config section (written to the run)."""
        ...

    def sequence_nll(
        self, x0: Tensor, times: Tensor | None, generator: torch.Generator | None = None, options: Any = None
    ) -> Tensor:
        """NLL per token of each sequence ``[B]`` (float64): exact, or averaged over the times ``[K, B]``."""
        ...

    def sample(self, num: int, seq_len: int, steps: int | None = None, **options: Any) -> Tensor:
        """``num`` sequences ``[num, seq_len]``; ``steps``: reverse steps of a diffusion model."""
        ...

    def step_flops(self, batch_size: int, seq_len: int, options: Any = None) -> dict[str, dict[str, float]]:
        """GFLOPs per sequence of each network evaluation one sampling step runs, by name."""
        ...

    def step_calls(self, seq_len: int, steps: int | None, options: Any = None) -> dict[str, int]:
        """How often one sample runs each part of :meth:`step_flops`."""
        ...
