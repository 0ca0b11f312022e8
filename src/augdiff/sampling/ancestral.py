"""Ancestral sampling of masked diffusion over a grid of T steps, with MDLM's p(x_0) cache.

Each step moves from time t to s < t on the grid 1 = t_0 > t_1 > … > t_T = ``t_min``. A masked position
unmasks with probability ρ_flip (CADD Eq 38) and, if it does, draws its token from the denoiser's
:math:`p_\\theta(x_0 \\mid x_t)`; an unmasked position never changes (so prefix/infill positions given at
the start are never re-masked). This is the model reverse kernel of LADD Eq 46 drawn in two stages.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Any, Protocol

import torch
from torch import Tensor
from tqdm.auto import tqdm

from augdiff.channels import ReverseStep
from augdiff.processes import adjust_log_probs, sample_categorical, unmask_step
from augdiff.sampling.ordering import ORDERINGS, ordered_unmask_step
from augdiff.sampling.remasking import Remasking, remask_step
from augdiff.schedules import MaskSchedule

__all__ = ["Denoiser", "SampleOutput", "AncestralSampler"]


class Denoiser(Protocol):
    """What a sampler needs from a model (``DiffusionModel`` implements it)."""

    @property
    def mask_id(self) -> int: ...

    @property
    def cacheable(self) -> bool: ...

    def particles(self, options: Any = None) -> int:
        """Network rows per sequence in one evaluation (CADD's K latent draws; 1 otherwise)."""
        ...

    def init_state(self, x_T: Tensor, generator: torch.Generator | None = None, options: Any = None) -> Any: ...

    def x0_log_probs(self, x_t: Tensor, t: Tensor, state: Any = None) -> Tensor: ...

    def update_state(self, state: Any, step: ReverseStep, generator: torch.Generator | None = None) -> Any: ...


@dataclass
class SampleOutput:
    """Samples and what they cost.

    Attributes:
        x: final tokens ``[B, L]``.
        intermediates: ``x_t`` at the start and after every step (T+1 tensors) when asked for, plus the
            result of the final denoise step when it had masks to resolve.
        nfe: batched network evaluations.
        rows_evaluated: network rows evaluated, i.e. sequences × particles (the cache saves these).
    """

    x: Tensor
    intermediates: list[Tensor] | None
    nfe: int
    rows_evaluated: int


TEMPERATURE_SCHEDULES = ("constant", "linear", "cosine")


def temperature_at(k: int, steps: int, tau: float, tau_max: float, schedule: str) -> float:
    r"""Temperature of step k of ``steps`` (k = 0 is the first, noisiest step).

    ``linear``: :math:`\tau_{max} + (\tau - \tau_{max})\,k/(T-1)`; ``cosine``:
    :math:`\tau + (\tau_{max} - \tau)\,\tfrac12(1 + \cos(\pi k/(T-1)))` — both start at τ_max and end at τ
    (the cosine temperature decay of CADD's image experiments, after Gat et al. 2024); ``constant``: τ.
    """
    if schedule == "constant" or steps == 1:
        return tau
    frac = k / (steps - 1)
    if schedule == "linear":
        return tau_max + (tau - tau_max) * frac
    return tau + (tau_max - tau) * 0.5 * (1.0 + math.cos(math.pi * frac))


class AncestralSampler:
    """Ancestral sampler for masked diffusion.

    Args:
        denoiser: the model (see :class:`Denoiser`).
        schedule: the mask schedule α(t) the model was trained with.
        temperature: applied to :math:`p_\\theta(x_0\\mid x_t)`.
        top_p: nucleus filtering of :math:`p_\\theta(x_0\\mid x_t)`.
        cache: reuse :math:`p_\\theta(x_0\\mid x_t)` for sequences whose tokens did not change since the last
            evaluation (MDLM's ``ddpm_cache``). Exact only when the denoiser ignores t and has no evolving
            latent state; asking for it otherwise is an error.
        final_denoise: how masks left after the last grid step are resolved: ``"sample"`` or ``"argmax"``
            (MDLM's noise-removal step). With ``t_min=0`` and α(0)=1 no mask is left.
        temperature_schedule: ``constant`` (``temperature`` at every step), or ``linear`` / ``cosine`` decay from
            ``tau_max`` at the first step to ``temperature`` at the last (:func:`temperature_at`; CADD's image
            sampler: cosine from τ_max = 2.5).
        ordering: which masked positions a step unmasks: ``random`` (each with probability ρ_flip, the
            ancestral step) or ``confidence`` / ``margin`` / ``entropy`` (the round(ρ_flip·#masked) most
            confident ones, LLaDA's low-confidence remasking; :mod:`augdiff.sampling.ordering`).
        channel_options: the latent channel's sampling options, a value of ``model.sampling_options(...)``
            (CADD: K, ẑ_0; LADD: lag, latent steps, η, guidance); ``None``: the run's settings.
        remasking: a :class:`~augdiff.sampling.remasking.Remasking` strategy (ReMDM cap / rescale / conf / loop,
            or the discrete flow-matching corrector): unmasked tokens may return to the mask. ``None``: never.
        dtype: precision of categorical sampling (float64 by default, see ``sample_categorical``).

    Example:
        >>> sampler = AncestralSampler(model, model.schedule, cache=True)
        >>> out = sampler.sample(batch_size=16, seq_len=128, steps=64)
    """

    def __init__(
        self,
        denoiser: Denoiser,
        schedule: MaskSchedule,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        cache: bool = False,
        final_denoise: str = "sample",
        ordering: str = "random",
        temperature_schedule: str = "constant",
        tau_max: float = 2.5,
        remasking: Remasking | None = None,
        channel_options: Any = None,
        dtype: torch.dtype = torch.float64,
    ) -> None:
        if cache and not denoiser.cacheable:
            raise ValueError(
                "cache=True needs a denoiser that ignores t and carries no latent state "
                "(train with model.time_conditioning=false, or sample without the cache)"
            )
        if temperature_schedule not in TEMPERATURE_SCHEDULES:
            raise ValueError(
                f"temperature_schedule must be one of {TEMPERATURE_SCHEDULES}, got {temperature_schedule!r}"
            )
        if ordering not in ORDERINGS:
            raise ValueError(f"ordering must be one of {ORDERINGS}, got {ordering!r}")
        if remasking is not None and ordering != "random":
            raise ValueError("remasking and a confidence ordering are two different samplers: choose one")
        if final_denoise not in ("sample", "argmax"):
            raise ValueError(f"final_denoise must be 'sample' or 'argmax', got {final_denoise!r}")
        self.denoiser = denoiser
        self.schedule = schedule
        self.temperature = temperature
        self.top_p = top_p
        self.cache = cache
        self.final_denoise = final_denoise
        self.ordering = ordering
        self.temperature_schedule = temperature_schedule
        self.tau_max = tau_max
        self.remasking = remasking
        self.channel_options = channel_options
        self.dtype = dtype

    def _initial_tokens(
        self, batch_size: int, seq_len: int, device: torch.device, x_init: Tensor | None, fixed: Tensor | None
    ) -> Tensor:
        x = torch.full((batch_size, seq_len), self.denoiser.mask_id, dtype=torch.long, device=device)
        if fixed is None:
            return x
        assert x_init is not None, "fixed positions need their tokens in x_init"
        fixed = fixed.to(device).expand(batch_size, seq_len)
        return torch.where(fixed, x_init.to(device).expand(batch_size, seq_len), x)

    @torch.no_grad()
    def sample(
        self,
        batch_size: int,
        seq_len: int,
        steps: int,
        *,
        x_init: Tensor | None = None,
        fixed: Tensor | None = None,
        t_min: float = 0.0,
        generator: torch.Generator | None = None,
        device: torch.device | str = "cpu",
        return_intermediates: bool = False,
        progress: bool = False,
    ) -> SampleOutput:
        """Draw ``batch_size`` sequences of length ``seq_len`` in ``steps`` reverse steps.

        Args:
            x_init: tokens ``[B or 1, L]`` for the positions in ``fixed`` (prefix or infill conditioning).
            fixed: boolean ``[B or 1, L]``: positions given by ``x_init``, never masked, never changed.
            t_min: the last time on the grid (0: the last step unmasks everything when α(0)=1).
            generator: randomness for the sampler (and the latent channel).
        """
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        device = torch.device(device)
        mask_id = self.denoiser.mask_id
        x = self._initial_tokens(batch_size, seq_len, device, x_init, fixed)
        state = self.denoiser.init_state(x, generator, self.channel_options)
        grid = torch.linspace(1.0, t_min, steps + 1, dtype=torch.float64)
        alphas = self.schedule.alpha(grid)
        intermediates = [x.cpu()] if return_intermediates else None
        log_p: Tensor | None = None
        stale = torch.ones(batch_size, dtype=torch.bool, device=device)
        conf = torch.full(x.shape, -torch.inf, dtype=self.dtype, device=device)  # ReMDM-conf's token scores
        fixed = None if fixed is None else fixed.to(device)
        nfe = rows = 0
        for k in tqdm(range(steps), desc="sampling", disable=not progress, leave=False):
            t_value = float(grid[k])
            log_p, n = self._refresh(log_p, stale, x, t_value, state)
            nfe, rows = nfe + (n > 0), rows + n
            tau = temperature_at(k, steps, self.temperature, self.tau_max, self.temperature_schedule)
            alpha_t, alpha_s = float(alphas[k]), float(alphas[k + 1])
            if self.remasking is not None:
                x_next, conf = self._remask(
                    x, log_p, (t_value, float(grid[k + 1])), (alpha_t, alpha_s), conf, fixed, generator, tau
                )
            else:
                step = unmask_step if self.ordering == "random" else partial(ordered_unmask_step, how=self.ordering)
                x_next = step(
                    x, log_p, alpha_t, alpha_s, mask_id, generator=generator, temperature=tau, top_p=self.top_p,
                    dtype=self.dtype,
                )  # fmt: skip
            state = self.denoiser.update_state(
                state, ReverseStep(x, x_next, log_p, t_value, float(grid[k + 1])), generator
            )
            stale = (x_next != x).any(dim=-1) if self.cache else torch.ones_like(stale)
            x = x_next
            if intermediates is not None:
                intermediates.append(x.cpu())
        x, n = self._final_denoise(x, log_p, stale, float(grid[-1]), state, generator)
        nfe, rows = nfe + (n > 0), rows + n
        if intermediates is not None and n > 0:
            intermediates.append(x.cpu())
        return SampleOutput(x=x, intermediates=intermediates, nfe=nfe, rows_evaluated=rows)

    def _remask(
        self,
        x: Tensor,
        log_p: Tensor,
        times: tuple[float, float],
        alphas: tuple[float, float],
        conf: Tensor,
        fixed: Tensor | None,
        generator: torch.Generator | None,
        temperature: float,
    ) -> tuple[Tensor, Tensor]:
        """One remasking step t → s; ReMDM-conf's scores: −p of each token when drawn, −∞ while masked."""
        assert self.remasking is not None
        alpha_t, alpha_s = self.remasking.alphas(*times, *alphas)
        p_unmask, p_remask = self.remasking.probabilities(times[0], alpha_t, alpha_s, conf)
        mask_id = self.denoiser.mask_id
        x_next, drawn_p = remask_step(
            x, log_p, p_unmask, p_remask, mask_id, generator, frozen=fixed, temperature=temperature,
            top_p=self.top_p, dtype=self.dtype,
        )  # fmt: skip
        conf = torch.where((x == mask_id) & (x_next != mask_id), -drawn_p, conf)
        return x_next, conf.masked_fill(x_next == mask_id, -torch.inf)

    def _refresh(self, log_p: Tensor | None, stale: Tensor, x: Tensor, t: float, state: Any) -> tuple[Tensor, int]:
        """Evaluate the denoiser on the rows marked stale; the others keep their cached output."""
        if log_p is not None and not stale.any():
            return log_p, 0
        if log_p is None or bool(stale.all()):
            t_batch = torch.full((x.shape[0],), t, device=x.device)
            return self.denoiser.x0_log_probs(x, t_batch, state), x.shape[0] * self.denoiser.particles(
                self.channel_options
            )
        idx = stale.nonzero().squeeze(-1)
        t_rows = torch.full((idx.numel(),), t, device=x.device)
        # The cache is only allowed for stateless denoisers, so the state needs no slicing here.
        log_p = log_p.clone()
        log_p[idx] = self.denoiser.x0_log_probs(x[idx], t_rows, None).to(log_p.dtype)
        return log_p, idx.numel()

    def _final_denoise(
        self, x: Tensor, log_p: Tensor | None, stale: Tensor, t: float, state: Any, generator: torch.Generator | None
    ) -> tuple[Tensor, int]:
        """Resolve masks left after the grid (none when t_min=0 and α(0)=1)."""
        left = x == self.denoiser.mask_id
        if not left.any():
            return x, 0
        log_p, n = self._refresh(log_p, stale, x, t, state)
        if self.final_denoise == "argmax":
            tokens = log_p[left].argmax(dim=-1)
        else:
            probs = adjust_log_probs(log_p[left], self.temperature, self.top_p, self.dtype)
            tokens = sample_categorical(probs, generator, self.dtype)
        x = x.clone()
        x[left] = tokens
        return x, n
