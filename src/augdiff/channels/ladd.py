r"""LADD's latent channel (Shariatian et al. 2025): an encoder latent diffused jointly with the tokens.

What Co-LADD and Di-LADD share lives here: the encoder pass with its regularizers (latent dropout p_cf,
encoder input dropout p_drop, App. C.3), the choice of latent time (coupled or independent), the losses of
Eq 14, and the inference schedules. The latent process itself (Gaussian or masked codes) is supplied by the
subclasses in :mod:`augdiff.channels.co_ladd` and :mod:`augdiff.channels.di_ladd`.

Inference with lag λ ∈ [0, 1] (beyond the paper, which leaves interpolation open, §3.1): the latent first runs
alone from t_y = 1 to t_y = 1 − λ in ⌈λ·T_y⌉ steps of the latent-only denoiser, then both channels move together
with :math:`t_y = (1-\lambda)\, t_x`. λ = 0 is the joint (FUJI) model, λ = 1 the sequential (SEQ) one: the latent
is resolved completely before the first token step and then held clean.
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from augdiff.channels.base import ChannelContext, ChannelInput, LatentChannel, ReverseStep
from augdiff.errors import AugdiffError
from augdiff.flops import latent_step_flops
from augdiff.nn.latent import LatentDenoiser, LatentEncoder
from augdiff.nn.presets import model_shape
from augdiff.nn.protocol import TokenNetwork

__all__ = ["LADDChannel", "LADDSampling", "LADDState", "guided_log_probs", "ladd_parts"]


@dataclass(frozen=True)
class LADDSampling:
    """LADD's inference options: the lag λ ∈ [0, 1] (0 joint, 1 sequential), the latent-only steps T_y of the
    lead, DDIM's η (Co-LADD), the latent guidance scale w (1: none), and where a lagged latent comes from:
    ``prior`` (the latent-only denoiser, which reads no tokens) or ``encoder`` (the encoder applied to the given
    tokens — prefix or infill — with the free positions blanked, as ``ladd.p_drop`` trains it to read them)."""

    lag: float = 0.0
    latent_steps: int = 128
    eta: float = 0.0
    guidance: float = 1.0
    latent_from: str = "prior"

    def __post_init__(self) -> None:
        if not 0.0 <= self.lag <= 1.0:
            raise ValueError(f"lag must lie in [0, 1], got {self.lag}")
        if self.latent_steps < 1:
            raise ValueError(f"latent_steps must be at least 1, got {self.latent_steps}")
        if not 0.0 <= self.eta < float("inf"):
            raise ValueError(f"eta must be ≥ 0, got {self.eta}")
        if not abs(self.guidance) < float("inf"):
            raise ValueError(f"guidance must be a finite number, got {self.guidance}")
        if self.latent_from not in ("prior", "encoder"):
            raise ValueError(f"latent_from must be prior or encoder, got {self.latent_from!r}")


@dataclass
class LADDState:
    """Sampling state: the latent ``y`` at latent time ``t_y``, the options, the latent head of the last forward
    pass, and the unconditional ("null") latent input used by guidance."""

    y: Tensor
    t_y: float
    options: LADDSampling
    head: Tensor | None = None
    null: Tensor | None = None


def guided_log_probs(cond: Tensor, uncond: Tensor, scale: float) -> Tensor:
    r"""Classifier-free latent guidance on token log-probabilities (Ho & Salimans 2022, adapted to the latent):
    :math:`\log p_w \propto \log p_\varnothing + w(\log p_y - \log p_\varnothing)`; w = 1 is no guidance.

    Positions carried over by SUBS (−∞ everywhere but the token) keep the conditional distribution.
    """
    mixed = uncond + scale * (cond - uncond)
    mixed = torch.where(torch.isneginf(cond), cond, mixed)
    return torch.log_softmax(torch.where(torch.isnan(mixed), cond, mixed), dim=-1)


class LADDChannel(LatentChannel):
    """Shared machinery of Co-LADD and Di-LADD (see the module docstring)."""

    stateless = False

    def __init__(
        self,
        encoder: nn.Module,
        prior: LatentDenoiser,
        *,
        mask_id: int,
        stage: int,
        lambda_x: float = 1.0,
        lambda_y: float = 1.0,
        p_cf: float = 0.0,
        p_drop: float = 0.0,
        independent_t: bool = False,
        p_seq: float = 0.5,
        latent_weighting: str = "constant",
        sampling: LADDSampling | None = None,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.prior = prior
        self.mask_id = mask_id
        self.stage = stage
        self.token_weight = lambda_x
        self.lambda_y = lambda_y if stage == 2 else 0.0
        self.p_cf, self.p_drop = p_cf, p_drop
        self.independent_t = independent_t
        self.p_seq = p_seq
        self.latent_weighting = latent_weighting
        self.sampling_defaults = sampling or LADDSampling()  # the config's ladd.lag, latent_steps, eta, guidance
        if stage == 2:  # the encoder is frozen in stage 2 (§3.3)
            for p in self.encoder.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True) -> LADDChannel:
        super().train(mode)
        if self.stage == 2:
            self.frozen_modules().eval()
        return self

    def frozen_modules(self) -> nn.Module:
        """What stage 2 freezes (the encoder; Di-LADD adds its codebook)."""
        return self.encoder

    # -- the latent process, per method ----------------------------------------------------------------------
    @abstractmethod
    def encode(self, x0: Tensor, blank: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Clean latent y_0 (Co: vectors; Di: codes), an extra encoder loss (Di: VQ commitment), and the vectors
        to read for y_0 that carry the encoder's gradient (Di: straight-through quantized; ``None`` if y_0 is
        its own vector)."""

    @abstractmethod
    def null_latent(self, y0: Tensor) -> Tensor:
        """The fixed null latent replacing y_0 under latent dropout (LADD Eq 76)."""

    @abstractmethod
    def noise(self, y0: Tensor, t_y: Tensor, generator: torch.Generator | None) -> Tensor:
        """y_t ~ q(y_t | y_0) at latent times ``t_y`` ``[B]``; exactly y_0 where t_y = 0."""

    @abstractmethod
    def latent_input(self, y_t: Tensor, clean: Tensor | None = None) -> Tensor:
        """Vectors ``[B, L′, d′]`` that the networks read for the latent y_t; ``clean``: the third output of
        :meth:`encode`, read at the positions where y_t is still clean."""

    @abstractmethod
    def latent_loss(self, head: Tensor, y0: Tensor, y_t: Tensor, t_y: Tensor) -> Tensor:
        """Per-sequence latent loss L_y (Eq 13 / Eq 72) of a head output, averaged over latent positions."""

    @abstractmethod
    def terminal(self, batch: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        """A draw of y at t_y = 1 (Co: N(0, I); Di: all codes masked)."""

    @abstractmethod
    def reverse(
        self, y: Tensor, head: Tensor, t: float, s: float, generator: torch.Generator | None, eta: float = 0.0
    ) -> Tensor:
        """One reverse step of the latent from t to s < t given the head's prediction (``eta``: DDIM's η)."""

    # -- training ------------------------------------------------------------------------------------------
    def _blank(self, x_t: Tensor, generator: torch.Generator | None) -> Tensor | None:
        """Encoder input dropout (App. C.3): per sequence a rate r ~ U[0, p_drop]; masked positions blank w.p. r."""
        if not (self.training and self.p_drop > 0):
            return None
        b = x_t.shape[0]
        rate = self.p_drop * torch.rand(b, 1, device=x_t.device, generator=generator)
        u = torch.rand(x_t.shape, device=x_t.device, generator=generator)
        return (x_t == self.mask_id) & (u < rate)

    def _latent_time(self, t: Tensor, generator: torch.Generator | None, lag: float = 0.0) -> Tensor:
        """t_y per sequence. Training mixes the two conditionings of LADD Eq 12: with probability p_seq the
        sequential one (the clean latent, t_y = 0), otherwise the joint one (t_y = t, or an independent draw).
        Evaluation follows the inference mode's lag λ, t_y = (1 − λ)·t, except for a model trained with independent
        times alone (``independent_t`` and ``p_seq = 0``), whose recon is its training loss: t_y drawn
        independently, whatever the lag (LADD Table 1's Di-LADD rows)."""
        trained_independent = self.independent_t and (self.training or self.p_seq == 0)
        if not (self.training or trained_independent):
            return (1.0 - lag) * t
        t_y = torch.rand(t.shape, device=t.device, generator=generator).clamp_min(1e-3) if trained_independent else t
        if not self.training:
            return t_y
        if self.p_seq > 0:
            clean = torch.rand(t.shape, device=t.device, generator=generator) < self.p_seq
            t_y = torch.where(clean, torch.zeros_like(t_y), t_y)
        return t_y

    def train_input(
        self,
        network: TokenNetwork,
        x0: Tensor,
        x_t: Tensor,
        t: Tensor,
        generator: torch.Generator | None,
        options: Any = None,
    ) -> ChannelInput:
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.stage == 1):
            y0, encoder_loss, clean = self.encode(x0, self._blank(x_t, generator))
        b = x0.shape[0]
        t_y = self._latent_time(t, generator, (options or self.sampling_defaults).lag)
        y_t = self.noise(y0, t_y, generator)
        dropped = torch.zeros(b, dtype=torch.bool, device=x0.device)
        if self.training and self.p_cf > 0:  # Eq 76: the null latent enters as it is, never noised (authors' code)
            dropped = torch.rand(b, device=x0.device, generator=generator) < self.p_cf
            y_t = torch.where(dropped.view(-1, *[1] * (y0.dim() - 1)), self.null_latent(y0), y_t)
        context = {"y0": y0, "y_t": y_t, "t_y": t_y, "encoder_loss": encoder_loss, "dropped": dropped}
        return ChannelInput(latent=self.latent_input(y_t, clean), latent_t=t_y, context=context)

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
        r"""Eq 14 beyond the token term: :math:`\lambda_y (L_y + L_y^{\text{prior}})` + the VQ commitment.

        :math:`L_y^{\text{prior}}` trains the latent-only denoiser of sequential inference on the same clean
        latents. Rows whose latent was dropped (p_cf) are left out of both latent terms: they exist to teach the
        token denoiser the unconditional case, and the prior must not learn to emit the null latent. Rows
        trained in the sequential conditioning (t_y = 0: the latent is y_0 itself) are left out of the joint
        term, which would only teach the head to copy its input; with ``p_seq = 1`` (the authors' sequential
        model) the latent is learned by the latent-only denoiser alone.
        """
        ctx = inputs.context
        total = ctx["encoder_loss"] if ctx["encoder_loss"] is not None and self.stage == 1 else None
        if self.lambda_y == 0.0:
            return total
        y0, t_y = ctx["y0"], ctx["t_y"]
        keep = (~ctx["dropped"]).float()
        n_keep = keep.sum().clamp_min(1.0)
        noisy = keep * (t_y > 0).float()
        assert head is not None, "LADD's network returns a latent head"
        joint = (self.latent_loss(head, y0, ctx["y_t"], t_y.clamp_min(1e-3)) * noisy).sum() / noisy.sum().clamp_min(1.0)
        t_p = torch.rand(t_y.shape, device=t_y.device, generator=generator).clamp_min(1e-3)
        y_p = self.noise(y0, t_p, generator)
        prior = (self.latent_loss(self.prior(self.latent_input(y_p), t_p), y0, y_p, t_p) * keep).sum() / n_keep
        latent = self.lambda_y * (joint + prior)
        return latent if total is None else latent + total

    # -- sampling ------------------------------------------------------------------------------------------
    def sampling_options(  # type: ignore[override]
        self,
        *,
        lag: float | None = None,
        latent_steps: int | None = None,
        eta: float | None = None,
        guidance: float | None = None,
        latent_from: str | None = None,
    ) -> LADDSampling:
        """Inference options: lag λ (0 joint … 1 sequential), latent steps T_y, DDIM η, guidance scale w, and
        the source of a lagged latent (``prior`` or ``encoder``)."""
        default = self.sampling_defaults
        return LADDSampling(
            lag=default.lag if lag is None else float(lag),
            latent_steps=default.latent_steps if latent_steps is None else int(latent_steps),
            eta=default.eta if eta is None else float(eta),
            guidance=default.guidance if guidance is None else float(guidance),
            latent_from=default.latent_from if latent_from is None else latent_from,
        )

    def num_particles(self, options: LADDSampling | None = None) -> int:
        return 2 if (options or self.sampling_defaults).guidance != 1.0 else 1

    def step_flops(self, batch_size: int, options: Any) -> dict[str, dict[str, float]]:
        """A lagged inference (λ > 0) also runs the latent-only denoiser before the token steps."""
        opts = options if options is not None else self.sampling_defaults
        return {"latent step": latent_step_flops(self, batch_size)} if opts.lag > 0 else {}

    def step_calls(self, options: Any) -> dict[str, int]:
        """T_y·λ latent-only steps (at least one) per sample when λ > 0, as :meth:`init_state` runs them."""
        opts = options if options is not None else self.sampling_defaults
        return {"latent step": max(1, round(opts.lag * opts.latent_steps))} if opts.lag > 0 else {}

    def require_sampling_ready(self) -> None:
        """Sampling needs stage 2: in stage 1 the latent head and the latent-only denoiser are never trained."""
        if self.stage == 1:
            raise AugdiffError(
                "this LADD run is from stage 1: its latent denoisers are untrained; train stage 2 "
                "(augdiff train --stage 2 --init-from DIR) and sample from that run"
            )

    def _null_input(self, y: Tensor, options: LADDSampling) -> Tensor | None:
        if options.guidance == 1.0:
            return None
        return self.latent_input(self.null_latent(y))  # un-noised, as in training (Eq 76)

    @torch.no_grad()
    def init_state(
        self, network: TokenNetwork, x_T: Tensor, generator: torch.Generator | None, options: Any = None
    ) -> LADDState:
        """y at t_y = 1, then the latent-only phase to t_y = 1 − λ (never reads the tokens)."""
        self.require_sampling_ready()
        opts: LADDSampling = options or self.sampling_defaults
        if opts.latent_from == "encoder" and opts.lag > 0:
            return self._encoded_state(x_T, opts, generator)
        y = self.terminal(x_T.shape[0], x_T.device, generator)
        n = 0 if opts.lag == 0.0 else max(1, round(opts.lag * opts.latent_steps))
        grid = torch.linspace(1.0, 1.0 - opts.lag, n + 1, dtype=torch.float64).tolist()
        for t, s in zip(grid[:-1], grid[1:], strict=True):
            t_b = torch.full((y.shape[0],), t, device=y.device)
            y = self.reverse(y, self.prior(self.latent_input(y), t_b), t, s, generator, opts.eta)
        return LADDState(y=y, t_y=1.0 - opts.lag, options=opts, null=self._null_input(y, opts))

    def _encoded_state(self, x_T: Tensor, opts: LADDSampling, generator: torch.Generator | None) -> LADDState:
        """The latent encoded from the given tokens (free positions blanked), noised to t_y = 1 − λ: what the
        given tokens say about the latent, instead of a draw from the prior that never reads them."""
        free = x_T == self.mask_id
        if bool(free.all(dim=-1).any()):
            raise AugdiffError("--latent-from encoder needs given tokens: add --prefix or --infill")
        if not isinstance(self.encoder, LatentEncoder):  # a frozen pretrained encoder reads whole texts, no blanks
            raise AugdiffError("--latent-from encoder needs a trainable encoder (ladd.encoder=dit)")
        y0, _, _ = self.encode(x_T.clamp(max=self.mask_id - 1), free)
        t_y = 1.0 - opts.lag
        y = y0 if t_y == 0 else self.noise(y0, torch.full((y0.shape[0],), t_y, device=y0.device), generator)
        return LADDState(y=y, t_y=t_y, options=opts, null=self._null_input(y, opts))

    def sample_input(self, network: TokenNetwork, x_t: Tensor, state: LADDState) -> ChannelInput:
        latent = self.latent_input(state.y)
        if state.null is not None:  # rows interleaved per sequence: (conditional, unconditional)
            latent = torch.stack([latent, state.null], dim=1).flatten(0, 1)
        t_y = torch.full((latent.shape[0],), state.t_y, device=latent.device)
        return ChannelInput(latent=latent, latent_t=t_y)

    def combine(self, log_p: Tensor, head: Tensor | None, state: LADDState) -> Tensor:
        """Rows ``[B, R, L, V]`` → ``[B, L, V]``; keeps the conditional latent head for :meth:`update_state`."""
        b, r = log_p.shape[:2]
        assert head is not None
        state.head = head.view(b, r, *head.shape[1:])[:, 0]
        if r == 1:
            return log_p[:, 0]
        return guided_log_probs(log_p[:, 0], log_p[:, 1], state.options.guidance)

    @torch.no_grad()
    def update_state(
        self, network: TokenNetwork, state: LADDState, step: ReverseStep, generator: torch.Generator | None
    ) -> LADDState:
        """The latent follows the tokens: from (1−λ)·t to (1−λ)·s (held clean when λ = 1)."""
        lag = state.options.lag
        t_y, s_y = (1.0 - lag) * step.t, (1.0 - lag) * step.s
        y = state.y
        if lag < 1.0 and state.head is not None:
            y = self.reverse(y, state.head, t_y, s_y, generator, state.options.eta)
        return LADDState(y=y, t_y=s_y, options=state.options, null=self._null_input(y, state.options))


def _encoder(section: Any, context: ChannelContext) -> nn.Module:
    """E_φ: a trainable DiT encoder, or a frozen sentence encoder reading the decoded text."""
    if section.encoder == "pretrained":
        from augdiff.nn.pretrained import PretrainedEncoder  # sentence-transformers is only needed here

        if context.decode is None:
            raise AugdiffError("ladd.encoder=pretrained reads text: use text data (text:PATH), not token ids")
        return PretrainedEncoder(section.encoder_path, section.latent_len, section.latent_dim, context.decode)
    length = context.seq_len
    if section.pool in ("none", "patch") and length is None:
        raise AugdiffError(f"ladd.pool={section.pool} needs the sequence length: set seq_len")
    try:
        return LatentEncoder(
            context.vocab_size,
            length or section.latent_len,
            section.latent_len,
            section.latent_dim,
            model_shape(section.encoder_size),
            section.pool,
            readout=section.encoder_readout,
            dropout=section.encoder_dropout,
        )
    except ValueError as exc:
        raise AugdiffError(f"ladd.pool={section.pool}: {exc}") from None


def ladd_parts(section: Any, context: ChannelContext, head_width: int) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """What Co-LADD and Di-LADD share, from the ``ladd.*`` section: the encoder, the latent-only denoiser (an MLP
    for one latent vector, a DiT otherwise, unless ``prior`` says) and the :class:`LADDChannel` arguments."""
    kind = section.prior if section.prior != "auto" else ("mlp" if section.latent_len == 1 else "dit")
    prior = LatentDenoiser(
        section.latent_len, section.latent_dim, head_width, kind, section.prior_hidden, section.prior_layers
    )
    common: dict[str, Any] = dict(
        mask_id=context.vocab_size,
        stage=section.stage,
        lambda_x=section.lambda_x,
        lambda_y=section.lambda_y,
        p_cf=section.p_cf,
        p_drop=section.p_drop,
        independent_t=section.independent_t,
        p_seq=section.p_seq,
        latent_weighting=section.latent_weighting,
        sampling=LADDSampling(section.lag, section.latent_steps, section.eta, section.guidance),
    )
    return _encoder(section, context), prior, common
