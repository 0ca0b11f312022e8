"""The latent channel: the one place where MDLM, CADD, Co-LADD and Di-LADD differ.

A channel decides what the token denoiser sees besides the masked tokens, adds its own loss terms, and
carries its own state through the sampler. MDLM's channel (:class:`NoChannel`) adds nothing.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from augdiff.nn.protocol import TokenNetwork
from augdiff.schedules import MaskSchedule

__all__ = ["ChannelContext", "ChannelInput", "ReverseStep", "LatentChannel"]


@dataclass(frozen=True)
class ChannelContext:
    """What a channel's ``build(section, context)`` factory needs besides its config section: the token mask
    schedule, the number of data tokens V (the mask id), the network's width, the data's sequence length and a
    decoder of ids to texts (the last two only for LADD encoders that pool by patches or read text), and the
    other config sections of a method composed of two channels."""

    schedule: MaskSchedule
    vocab_size: int
    hidden_size: int
    seq_len: int | None = None
    decode: Callable[[Tensor], list[str]] | None = None
    #: further config sections a composed method reads (``cadd`` for ``cadd+co-ladd``), by name
    sections: dict[str, Any] = field(default_factory=dict)


@dataclass
class ChannelInput:
    """What a channel hands to the network for one forward pass.

    Attributes:
        input_embeds: embeddings ``[B, L, D]`` replacing the token embedding, or ``None`` to embed ``x_t``.
        latent: a second input stream ``[B, L′, d′]`` for a two-stream network (LADD's MM-DiT), or ``None``.
        latent_t: the latent stream's time ``[B]``.
        context: what the channel needs again after the forward pass (e.g. the clean latents z_0).
    """

    input_embeds: Tensor | None = None
    latent: Tensor | None = None
    latent_t: Tensor | None = None
    context: dict[str, Any] = field(default_factory=dict)


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

    Sampling options (CADD's K, LADD's lag, …) are a value made by :meth:`sampling_options` and handed to
    :meth:`init_state`; the state carries them through the sampler's steps, so sampling never changes the
    module (and an evaluation that takes an inference mode gets it the same way, as ``options``).
    """

    name: str = "abstract"
    stateless: bool = True
    #: what the model's ELBO-style NLL (``LossOutput.nll``) is, in words, for reports
    nll_kind: str = "token term given the latent: not a likelihood of x"
    #: λ_x of LADD Eq 14, the weight of the token loss (1 for every other method).
    token_weight: float = 1.0
    #: whether the token term alone bounds −log p(x) (no latent carries x): what a conditional bound needs
    token_term_is_bound: bool = False

    @abstractmethod
    def train_input(
        self,
        network: TokenNetwork,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        generator: torch.Generator | None,
        options: Any = None,
    ) -> ChannelInput:
        """Inputs for a training (or evaluation) forward pass on ``(x0, x_t, t)``; ``options``: a value of
        :meth:`sampling_options` for an evaluation in one inference mode (``None``: the defaults)."""

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
        """An extra training loss computed after the forward pass (``None``: nothing to add).

        ``head`` is the network's second output (LADD's latent head) when it has one.
        """
        return None

    def latent_kl(
        self, network: TokenNetwork, inputs: ChannelInput, log_p_x0: Tensor, t: Tensor, s: Tensor | None
    ) -> Tensor | None:
        """The latent's KL for one reverse step t → s at each position that stays masked ``[B, L]`` (nats;
        ``s=None``: its continuous-time rate), for the likelihood bound (:mod:`augdiff.metrics.bound`);
        ``None``: the channel has no latent, the bound is the token term alone."""
        raise NotImplementedError("the bound's latent terms are not derived for this channel")

    def prior_kl(self, network: TokenNetwork, x0: Tensor) -> Tensor | None:
        """The latent's KL to its prior at t = 1, summed over positions ``[B]`` (``None``: no latent prior)."""
        return None

    def settle(self, network: TokenNetwork) -> dict[str, dict[str, Any]]:
        """Settings measured from the network when training starts (after any ``init_from``), by config section
        (``{"cadd": {"sigma": …}}``), to be written into the run's config so that a resume and every later load
        use the same values."""
        return {}

    def combine(self, log_p: Tensor, head: Tensor | None, state: Any) -> Tensor:
        """Reduce the R rows evaluated per sequence, ``[B, R, L, V]``, to ``[B, L, V]`` (R = 1 here)."""
        assert log_p.shape[1] == 1, "this channel evaluates one row per sequence"
        return log_p[:, 0]

    def require_sampling_ready(self) -> None:
        """Raise :class:`~augdiff.errors.AugdiffError` when this channel's model cannot sample yet (e.g. a
        stage that trained no latent denoiser); called before a sampler starts."""

    def step_flops(self, batch_size: int, options: Any) -> dict[str, dict[str, float]]:
        """FLOPs of the network evaluations a sampling step runs besides the token denoiser, by name
        (:mod:`augdiff.flops`); none here."""
        return {}

    def step_calls(self, options: Any) -> dict[str, int]:
        """How often one sample runs each part of :meth:`step_flops`."""
        return {}

    def num_particles(self, options: Any = None) -> int:
        """Latent draws per sequence that one sampling forward pass evaluates (CADD's K; 1 otherwise)."""
        return 1

    def sampling_options(self, **given: Any) -> Any:
        """The channel's sampling options as one value: the run's settings with ``given`` ones (not ``None``)
        replacing them (CADD: ``k``, ``z0_hat``; LADD: ``lag``, ``latent_steps``, ``eta``, ``guidance``). This
        channel has none. Subclasses name their own options (keyword-only), narrowing the signature on purpose."""
        named = {k: v for k, v in given.items() if v is not None}
        if named:
            raise ValueError(f"the {self.name} channel has no sampling options ({', '.join(named)})")
        return None

    @abstractmethod
    def init_state(
        self, network: TokenNetwork, x_T: Tensor, generator: torch.Generator | None, options: Any = None
    ) -> Any:
        """Sampling state at t=1 for the initial tokens ``x_T``, carrying ``options`` (a value of
        :meth:`sampling_options`; ``None``: the defaults)."""

    @abstractmethod
    def sample_input(self, network: TokenNetwork, x_t: Tensor, state: Any) -> ChannelInput:
        """Inputs for a sampling forward pass."""

    @abstractmethod
    def update_state(
        self, network: TokenNetwork, state: Any, step: ReverseStep, generator: torch.Generator | None
    ) -> Any:
        """State at time ``step.s`` after the tokens moved from ``step.x_t`` to ``step.x_s``."""
