r"""CADD's continuous augmentation and Co-LADD's latent in one model (``method: cadd+co-ladd``; beyond both papers).

The two channels act on different inputs of the same MM-DiT, so they compose without touching each other:
CADD replaces the token stream's embeddings by the fusion of :math:`w(x_t)` with each masked token's noisy
embedding :math:`z_t` (CADD Eq 11), and Co-LADD feeds the encoder's noisy latent :math:`y_{t_y}` to the latent
stream (LADD Eq 12). Training adds both channels' losses to the token loss (CADD Eq 19's optional MSE, LADD
Eq 14's latent terms). Sampling carries both states: K CADD particles per sequence share the sequence's one
latent y, whose head prediction :math:`\hat y_0` is averaged over the particles, as CADD averages the token
distributions (Eq 5). LADD's latent guidance (two rows per particle) is not offered here.

The token term conditions on both latents, each carrying x: it is not a likelihood of x, and no bound is
derived for the composition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from augdiff.channels.base import ChannelContext, ChannelInput, LatentChannel, ReverseStep
from augdiff.channels.cadd import CADDChannel, CADDSampling, CADDState
from augdiff.channels.cadd import build as build_cadd
from augdiff.channels.co_ladd import CoLADDChannel
from augdiff.channels.co_ladd import build as build_co_ladd
from augdiff.channels.co_ladd import head_width as co_ladd_head_width
from augdiff.channels.ladd import LADDSampling, LADDState
from augdiff.errors import AugdiffError
from augdiff.nn.protocol import TokenNetwork

__all__ = ["ComposedSampling", "ComposedState", "ComposedChannel", "build", "head_width"]


@dataclass(frozen=True)
class ComposedSampling:
    """Both channels' sampling options: CADD's (K, ẑ_0) and LADD's (lag, latent steps, η, where the latent
    comes from; guidance stays 1)."""

    cadd: CADDSampling
    ladd: LADDSampling


@dataclass
class ComposedState:
    cadd: CADDState
    ladd: LADDState


class ComposedChannel(LatentChannel):
    """CADD's token-side latent and a Co-LADD latent stream, each its own channel, in one model."""

    name = "cadd+co-ladd"
    stateless = False
    nll_kind = "token term given CADD's latent and the LADD latent: not a likelihood of x"

    def __init__(self, cadd: CADDChannel, ladd: CoLADDChannel) -> None:
        super().__init__()
        self.cadd = cadd
        self.ladd = ladd
        self.token_weight = ladd.token_weight

    @staticmethod
    def _part(inputs: ChannelInput, key: str) -> ChannelInput:
        """One channel's view of the merged inputs (its own context)."""
        return ChannelInput(inputs.input_embeds, inputs.latent, inputs.latent_t, inputs.context[key])

    def train_input(
        self,
        network: TokenNetwork,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        generator: torch.Generator | None,
        options: Any = None,
    ) -> ChannelInput:
        ladd_options = options.ladd if isinstance(options, ComposedSampling) else None
        tokens = self.cadd.train_input(network, x0, x_t, t, generator)
        latent = self.ladd.train_input(network, x0, x_t, t, generator, ladd_options)
        context = {"cadd": tokens.context, "ladd": latent.context}
        return ChannelInput(tokens.input_embeds, latent.latent, latent.latent_t, context)

    def extra_loss(
        self,
        network: TokenNetwork,
        inputs: ChannelInput,
        log_p_x0: Tensor,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        weighting: str,
        head: Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> Tensor | None:
        """CADD's loss term (if any) + LADD's (Eq 14's latent terms, stage 1's encoder regularizer)."""
        parts = [
            self.cadd.extra_loss(network, self._part(inputs, "cadd"), log_p_x0, x0, x_t, t, weighting, head, generator),
            self.ladd.extra_loss(network, self._part(inputs, "ladd"), log_p_x0, x0, x_t, t, weighting, head, generator),
        ]
        present = [p for p in parts if p is not None]
        return None if not present else sum(present[1:], present[0])

    def settle(self, network: TokenNetwork) -> dict[str, dict[str, Any]]:
        return {**self.cadd.settle(network), **self.ladd.settle(network)}

    def require_sampling_ready(self) -> None:
        self.ladd.require_sampling_ready()

    def step_flops(self, batch_size: int, options: Any) -> dict[str, dict[str, float]]:
        return self.ladd.step_flops(batch_size, self._options(options).ladd)

    def step_calls(self, options: Any) -> dict[str, int]:
        return self.ladd.step_calls(self._options(options).ladd)

    # -- sampling ------------------------------------------------------------------------------------------
    def sampling_options(  # type: ignore[override]
        self,
        *,
        k: int | None = None,
        z0_hat: str | None = None,
        lag: float | None = None,
        latent_steps: int | None = None,
        eta: float | None = None,
        latent_from: str | None = None,
    ) -> ComposedSampling:
        """CADD's ``k``, ``z0_hat`` and LADD's ``lag``, ``latent_steps``, ``eta``, ``latent_from``."""
        ladd = self.ladd.sampling_options(lag=lag, latent_steps=latent_steps, eta=eta, latent_from=latent_from)
        if ladd.guidance != 1.0:
            raise ValueError("guidance is not offered with CADD's particles: set ladd.guidance=1")
        return ComposedSampling(self.cadd.sampling_options(k=k, z0_hat=z0_hat), ladd)

    def _options(self, options: Any) -> ComposedSampling:
        return options if isinstance(options, ComposedSampling) else self.sampling_options()

    def num_particles(self, options: Any = None) -> int:
        return self.cadd.num_particles(self._options(options).cadd)

    def init_state(
        self, network: TokenNetwork, x_T: Tensor, generator: torch.Generator | None, options: Any = None
    ) -> ComposedState:
        """LADD's latent first (its latent-only phase, when lagged), then CADD's K particles."""
        opts = self._options(options)
        ladd = self.ladd.init_state(network, x_T, generator, opts.ladd)
        return ComposedState(self.cadd.init_state(network, x_T, generator, opts.cadd), ladd)

    def sample_input(self, network: TokenNetwork, x_t: Tensor, state: ComposedState) -> ChannelInput:
        """B·K rows: CADD's particles, each with its sequence's latent."""
        tokens = self.cadd.sample_input(network, x_t, state.cadd)
        latent = self.ladd.sample_input(network, x_t, state.ladd)
        k = state.cadd.z.shape[1]
        assert latent.latent is not None and latent.latent_t is not None
        rows = latent.latent.repeat_interleave(k, dim=0), latent.latent_t.repeat_interleave(k, dim=0)
        return ChannelInput(tokens.input_embeds, *rows)

    def combine(self, log_p: Tensor, head: Tensor | None, state: ComposedState) -> Tensor:
        """Tokens: CADD Eq 5 over the K particles; the latent head: the particles' mean ŷ_0."""
        if head is None:
            raise AugdiffError("cadd+co-ladd needs a network with a latent head (the MM-DiT, or backbone=unet)")
        b, k = log_p.shape[:2]
        state.ladd.head = head.view(b, k, *head.shape[1:]).mean(dim=1)
        return self.cadd.combine(log_p, None, state.cadd)

    def update_state(
        self, network: TokenNetwork, state: ComposedState, step: ReverseStep, generator: torch.Generator | None
    ) -> ComposedState:
        ladd = self.ladd.update_state(network, state.ladd, step, generator)
        return ComposedState(self.cadd.update_state(network, state.cadd, step, generator), ladd)


def head_width(section: Any) -> int:
    """The MM-DiT's latent head: Co-LADD's ŷ_0."""
    return co_ladd_head_width(section)


def build(section: Any, context: ChannelContext) -> ComposedChannel:
    """From the ``ladd.*`` section and, through the context, the ``cadd.*`` one."""
    return ComposedChannel(build_cadd(context.sections["cadd"], context), build_co_ladd(section, context))
