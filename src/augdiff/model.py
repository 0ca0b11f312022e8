"""A method is a composition: token process (mask schedule) + latent channel + network.

:class:`DiffusionModel` is that composition. It trains through :meth:`DiffusionModel.loss` and is the
denoiser the samplers call (:class:`augdiff.sampling.Denoiser`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from augdiff.channels import ChannelInput, LatentChannel, NoChannel, ReverseStep
from augdiff.flops import sampling_step_flops
from augdiff.losses import LossOutput, masked_diffusion_nll
from augdiff.nn.protocol import TokenNetwork
from augdiff.processes import forward_mask, subs_log_probs
from augdiff.schedules import MaskSchedule

__all__ = ["DiffusionModel"]


class DiffusionModel(nn.Module):
    """Masked diffusion over ``vocab_size`` data tokens (mask id = ``vocab_size``) with a latent channel.

    Args:
        network: maps ``(x_t, t, input_embeds=None)`` to logits over ``vocab_size + 1`` states.
        schedule: the token mask schedule α(t).
        vocab_size: number of data tokens V; the mask is id V.
        channel: the latent channel (``NoChannel`` = MDLM).
        loss_weighting: ``"elbo"`` (−α′/(1−α)) or ``"constant"`` (1) for the training loss.
        pad_id: the padding token of padded sentence rows, left out of the loss and the NLL (``None``: none).

    Example:
        >>> model = DiffusionModel(DiT(DiTConfig(vocab_size=3, hidden_size=32, n_layers=2, n_heads=2)),
        ...                        LinearSchedule(), vocab_size=2)
        >>> out = model.loss(torch.randint(0, 2, (8, 16)), torch.rand(8))
        >>> out.loss.backward()
    """

    def __init__(
        self,
        network: TokenNetwork,
        schedule: MaskSchedule,
        vocab_size: int,
        channel: LatentChannel | None = None,
        loss_weighting: str = "elbo",
        pad_id: int | None = None,
    ) -> None:
        super().__init__()
        assert loss_weighting in ("elbo", "constant"), f"loss_weighting={loss_weighting!r}"
        self.network: TokenNetwork = network  # an nn.Module; the protocol names what the channels read
        self.schedule = schedule
        self.vocab_size = vocab_size
        self.channel = channel if channel is not None else NoChannel()
        self.loss_weighting = loss_weighting
        self.pad_id = pad_id

    #: the NLL it reports is an estimate of a bound, never exact (:class:`augdiff.protocol.SequenceModel`)
    exact_likelihood: ClassVar[bool] = False
    takes_steps: ClassVar[bool] = True

    @property
    def mask_id(self) -> int:
        return self.vocab_size

    @property
    def nll_kind(self) -> str:
        """What :meth:`sequence_nll` is, in words: the ELBO for MDLM, a token term given a latent otherwise."""
        return self.channel.nll_kind

    @property
    def token_term_is_bound(self) -> bool:
        """Whether the token term alone bounds −log p(x) (MDLM): what a conditional bound needs."""
        return self.channel.token_term_is_bound

    @property
    def has_bound(self) -> bool:
        """Whether a true bound with the latent's terms is derived (:mod:`augdiff.metrics.bound`: MDLM, CADD)."""
        return type(self.channel).latent_kl is not LatentChannel.latent_kl

    @property
    def cacheable(self) -> bool:
        """True when p(x_0 | x_t) depends on x_t alone, so a sampler may reuse it while x_t is unchanged."""
        return self.channel.stateless and not self.network.time_conditioned

    def particles(self, options: Any = None) -> int:
        """Network rows per sequence in one sampling evaluation under ``options`` (CADD's K; LADD with guidance
        2; 1 otherwise)."""
        return self.channel.num_particles(options)

    def sampling_options(self, **given: Any) -> Any:
        """The channel's sampling options as a value (:meth:`LatentChannel.sampling_options`)."""
        return self.channel.sampling_options(**given)

    def _forward(self, x_t: Tensor, t: Tensor, inputs: ChannelInput) -> tuple[Tensor, Tensor | None]:
        """SUBS log-probabilities and, for a two-stream network, its latent head."""
        streams = {} if inputs.latent is None else {"latent": inputs.latent, "latent_t": inputs.latent_t}
        out = self.network(x_t, t, input_embeds=inputs.input_embeds, **streams)
        return subs_log_probs(out.logits, x_t, self.mask_id), out.latent

    def denoise(
        self,
        x0: Tensor,
        t: Tensor,
        alpha_t: Tensor,
        generator: torch.Generator | None = None,
        options: Any = None,
        fixed: Tensor | None = None,
    ) -> tuple[Tensor, ChannelInput, Tensor, Tensor | None]:
        """One draw of the forward process at ``t`` and the denoiser on it: ``(x_t, channel inputs, log p(x_0 |
        x_t, ·) [B, L, V], latent head)``; what the loss and the likelihood bound (metrics.bound) both read.
        ``options``: the channel's sampling options of the inference mode an evaluation measures (LADD's lag);
        ``fixed`` ``[B, L]``: positions kept clean (an SFT prompt)."""
        x_t = forward_mask(x0, alpha_t, self.mask_id, generator)
        if fixed is not None:
            x_t = torch.where(fixed, x0, x_t)
        inputs = self.channel.train_input(self.network, x0, x_t, t, generator, options)
        log_p, head = self._forward(x_t, t, inputs)
        return x_t, inputs, log_p, head

    def loss(
        self,
        x0: Tensor,
        t: Tensor,
        generator: torch.Generator | None = None,
        options: Any = None,
        *,
        fixed: Tensor | None = None,
    ) -> LossOutput:
        """Monte-Carlo loss on clean tokens ``x0`` ``[B, L]`` at times ``t`` ``[B]`` (``options``: as
        :meth:`denoise`). ``fixed`` ``[B, L]``: positions never masked nor scored (supervised fine-tuning's
        prompt, LLaDA §2.3); the loss is then each response's per its own length, averaged over sequences.

        ``loss`` uses the configured weighting; ``nll`` is always the ELBO estimate per token. Token ids are
        checked where data enters (augdiff.data), not here, to keep the step free of host syncs.
        """
        sched = self.schedule(t)
        x_t, inputs, log_p, head = self.denoise(x0, t, sched.alpha_t, generator, options, fixed)
        counted = None if self.pad_id is None else x0 != self.pad_id
        if fixed is not None:
            counted = ~fixed if counted is None else counted & ~fixed
        elbo_terms = masked_diffusion_nll(log_p, x0, x_t, sched.elbo_weight, self.mask_id, counted)
        if self.loss_weighting == "elbo":
            train_terms = elbo_terms
        else:
            train_terms = masked_diffusion_nll(log_p, x0, x_t, torch.ones_like(t), self.mask_id, counted)
        lengths = torch.full_like(t, x0.shape[1]) if counted is None else counted.sum(-1).clamp_min(1).to(t.dtype)
        n_tokens = x0.numel() if counted is None else counted.sum().clamp_min(1)
        if fixed is None:
            loss = self.channel.token_weight * train_terms.sum() / n_tokens
        else:  # LLaDA's SFT: each response's loss per its own length, then the mean over sequences
            loss = self.channel.token_weight * (train_terms / lengths).mean()
        metrics = {"masked_fraction": (x_t == self.mask_id).float().mean().detach()}
        extra = self.channel.extra_loss(self.network, inputs, log_p, x0, x_t, t, self.loss_weighting, head, generator)
        if extra is not None:
            loss = loss + extra
            metrics["channel_loss"] = extra.detach()
        per_seq = (elbo_terms / lengths).detach()
        return LossOutput(loss=loss, nll=per_seq.mean(), nll_per_sequence=per_seq, metrics=metrics)

    def settle(self) -> dict[str, dict[str, Any]]:
        """Settings the channel measures from the network when training starts, by config section."""
        return self.channel.settle(self.network)

    def sequence_nll(
        self, x0: Tensor, times: Tensor | None, generator: torch.Generator | None = None, options: Any = None
    ) -> Tensor:
        """The ELBO-style NLL per token of each sequence ``[B]`` (float64), averaged over the times ``[K, B]``
        (one forward pass of B rows per row of ``times``); ``options`` as :meth:`denoise`."""
        assert times is not None and times.numel() > 0, "a diffusion model's NLL needs diffusion times"
        total = torch.zeros(x0.shape[0], dtype=torch.float64, device=x0.device)
        for t in times:
            total += self.loss(x0, t, generator, options).nll_per_sequence.double()
        return total / times.shape[0]

    def step_flops(self, batch_size: int, seq_len: int, options: Any = None) -> dict[str, dict[str, float]]:
        """GFLOPs per sequence of each network evaluation a sampling step runs (:mod:`augdiff.flops`): the token
        denoiser, and whatever the channel adds under ``options`` (LADD's latent-only steps)."""
        options = options if options is not None else self.sampling_options()  # the run's own defaults
        parts = {"token step": sampling_step_flops(self, batch_size, seq_len, options)}
        return parts | self.channel.step_flops(batch_size, options)

    def step_calls(self, seq_len: int, steps: int | None, options: Any = None) -> dict[str, int]:
        """How often one sample of ``steps`` steps runs each part of :meth:`step_flops`."""
        assert steps is not None, "a diffusion model needs a number of sampling steps"
        options = options if options is not None else self.sampling_options()
        return {"token step": steps} | self.channel.step_calls(options)

    def sample(self, num: int, seq_len: int, steps: int | None = None, **options: Any) -> Tensor:
        """``num`` sequences ``[num, seq_len]`` in ``steps`` reverse steps (:func:`augdiff.sampling.generate`, any
        of its sampler options): the sampling side of the protocol AR and diffusion models share."""
        from augdiff.sampling import generate  # the sampler reads this model through its Denoiser protocol

        assert steps is not None, "a diffusion model needs a number of sampling steps"
        return generate(self, self.schedule, num, seq_len, steps, **options)

    # -- the Denoiser protocol used by augdiff.sampling ---------------------------------------------------
    def init_state(self, x_T: Tensor, generator: torch.Generator | None = None, options: Any = None) -> Any:
        return self.channel.init_state(self.network, x_T, generator, options)

    def x0_log_probs(self, x_t: Tensor, t: Tensor, state: Any = None) -> Tensor:
        """log p(x_0 | x_t, state) ``[B, L, V]`` from one forward pass over all the rows the channel asks for:
        CADD's K particles (averaged in probability, Eq 5) or LADD's conditional + unconditional rows."""
        inputs = self.channel.sample_input(self.network, x_t, state)
        stream = inputs.input_embeds if inputs.input_embeds is not None else inputs.latent
        b = x_t.shape[0]
        r = 1 if stream is None else stream.shape[0] // b
        x_rep = x_t.repeat_interleave(r, dim=0) if r > 1 else x_t
        t_rep = t.repeat_interleave(r, dim=0) if r > 1 else t
        log_p, head = self._forward(x_rep, t_rep, inputs)
        return self.channel.combine(log_p.view(b, r, *log_p.shape[1:]), head, state)

    def update_state(self, state: Any, step: ReverseStep, generator: torch.Generator | None = None) -> Any:
        return self.channel.update_state(self.network, state, step, generator)
