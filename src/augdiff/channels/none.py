"""MDLM: no latent channel; the denoiser sees the masked tokens only."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from augdiff.channels.base import ChannelContext, ChannelInput, LatentChannel, ReverseStep
from augdiff.nn.protocol import TokenNetwork

__all__ = ["NoChannel", "build"]


class NoChannel(LatentChannel):
    """The empty channel of plain masked diffusion (MDLM, Sahoo et al. 2024)."""

    name = "none"
    nll_kind = "ELBO: an upper bound on -log p(x)"
    token_term_is_bound = True
    stateless = True

    def train_input(
        self,
        network: TokenNetwork,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        generator: torch.Generator | None,
        options: Any = None,
    ) -> ChannelInput:
        return ChannelInput()

    def latent_kl(
        self, network: TokenNetwork, inputs: ChannelInput, log_p_x0: Tensor, t: Tensor, s: Tensor | None
    ) -> Tensor | None:
        return None  # no latent: the bound is MDLM's ELBO

    def init_state(
        self, network: TokenNetwork, x_T: Tensor, generator: torch.Generator | None, options: Any = None
    ) -> Any:
        return None

    def sample_input(self, network: TokenNetwork, x_t: Tensor, state: Any) -> ChannelInput:
        return ChannelInput()

    def update_state(
        self, network: TokenNetwork, state: Any, step: ReverseStep, generator: torch.Generator | None
    ) -> Any:
        return None


def build(section: Any, context: ChannelContext) -> NoChannel:
    """MDLM's channel (no config section)."""
    return NoChannel()
