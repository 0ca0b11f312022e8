"""The latent channel: the one place where MDLM, CADD, Co-LADD and Di-LADD differ.

A channel decides what the token denoiser sees besides the masked tokens, adds its own loss terms, and
carries its own state through the sampler. MDLM's channel (:class:`NoChannel`) adds nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["ChannelInput", "ReverseStep", "LatentChannel"]


@dataclass
class ChannelInput:
    """What a channel hands to the network for one forward pass.

    Attributes:
        input_embeds: embeddings ``[B, L, D]`` replacing the token embedding, or ``None`` to embed ``x_t``.
        loss: an extra scalar loss term for training (already weighted), or ``None``.
    """

    input_embeds: Tensor | None = None
    loss: Tensor | None = None


@dataclass
class ReverseStep:
    """One move of the sampler from time t to s < t, as a latent channel sees it.

    Attributes:
        x_t: tokens before the step ``[B, L]``.
        x_s: tokens after the step ``[B, L]``.
        log_p_x0: the denoiser's log p(x_0 | x_t, state) ``[B, L, V]`` used for the step.
        t: the current time; s: the next time.
    """

    x_t: Tensor
    x_s: Tensor
    log_p_x0: Tensor
    t: float
    s: float


class LatentChannel(nn.Module, ABC):
    """Contract of a latent channel.

    ``stateless`` says that the channel's sampling state never changes between steps; only then may the
    sampler reuse a cached :math:`p_\\theta(x_0 \\mid x_t)` when no token changed.
    """

    name: str = "abstract"
    stateless: bool = True

    @abstractmethod
    def train_input(
        self, network: nn.Module, x0: Tensor, x_t: Tensor, t: Tensor, generator: torch.Generator | None
    ) -> ChannelInput:
        """Inputs for a training forward pass on ``(x0, x_t, t)``."""

    @abstractmethod
    def init_state(self, x_T: Tensor, generator: torch.Generator | None) -> Any:
        """Sampling state at t=1 for the initial tokens ``x_T``."""

    @abstractmethod
    def sample_input(self, network: nn.Module, x_t: Tensor, state: Any) -> ChannelInput:
        """Inputs for a sampling forward pass."""

    @abstractmethod
    def update_state(self, state: Any, step: ReverseStep, generator: torch.Generator | None) -> Any:
        """State at time ``step.s`` after the tokens moved from ``step.x_t`` to ``step.x_s``."""
