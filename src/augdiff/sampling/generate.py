"""Drawing many samples from a model in batches: the routine behind ``augdiff sample``, ``eval`` and ``run``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from augdiff.sampling.ancestral import AncestralSampler, Denoiser
from augdiff.sampling.remasking import Remasking
from augdiff.schedules import MaskSchedule

__all__ = ["generate"]


def generate(
    model: Denoiser,
    schedule: MaskSchedule,
    num: int,
    seq_len: int,
    steps: int,
    *,
    batch_size: int = 256,
    cache: bool | None = None,
    temperature: float = 1.0,
    top_p: float = 1.0,
    final_denoise: str = "sample",
    ordering: str = "random",
    temperature_schedule: str = "constant",
    tau_max: float = 2.5,
    remasking: Remasking | None = None,
    channel_options: Any = None,
    t_min: float = 0.0,
    prefix: Tensor | None = None,
    infill: tuple[Tensor, Tensor] | None = None,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Tensor:
    """``num`` samples ``[num, seq_len]`` drawn in batches with :class:`AncestralSampler`.

    Args:
        cache: reuse p(x_0|x_t) while tokens are unchanged; ``None`` turns it on whenever it is exact.
        t_min: last time of the sampling grid (MDLM samples to ε, then resolves what is left).
        ordering: which masked positions each step unmasks (``AncestralSampler``): random, confidence, margin,
            entropy.
        temperature_schedule, tau_max: constant, or linear / cosine decay from ``tau_max`` to ``temperature``.
        remasking: a ReMDM strategy or the flow-matching corrector (:mod:`augdiff.sampling.remasking`).
        channel_options: the latent channel's options, ``model.sampling_options(k=4)`` or
            ``model.sampling_options(lag=1.0)`` (``None``: the run's settings).
        prefix: token ids ``[P]`` fixed at the start of every sample (prefix conditioning), or ``[num, P]``: one
            prefix per sample.
        infill: ``(ids, given)`` ``[P]``: the ids where ``given`` is true are fixed in every sample, the other
            positions (and those past P) are generated — infilling (the sampler keeps given tokens unmasked
            throughout, and a latent channel starts from them: CADD's latent holds w(x) there).
        seed: seeds one generator for the whole draw (same seed, same samples).
    """
    cache = model.cacheable if cache is None else cache
    sampler = AncestralSampler(
        model,
        schedule,
        temperature=temperature,
        top_p=top_p,
        cache=cache,
        final_denoise=final_denoise,
        ordering=ordering,
        temperature_schedule=temperature_schedule,
        tau_max=tau_max,
        remasking=remasking,
        channel_options=channel_options,
    )
    gen = torch.Generator(device=device)
    gen.manual_seed(seed)
    x_init = fixed = None
    if prefix is not None:
        assert infill is None, "give a prefix or an infill template, not both"
        infill = (prefix, torch.ones(prefix.shape[-1], dtype=torch.bool))
    if infill is not None:
        ids, given = infill
        ids = ids.reshape(-1, ids.shape[-1]).cpu()
        assert ids.shape[0] in (1, num), f"{ids.shape[0]} prefixes for {num} samples"
        assert ids.shape[1] <= seq_len, f"{ids.shape[1]} given positions are more than seq_len={seq_len}"
        x_init = torch.zeros(ids.shape[0], seq_len, dtype=torch.long)
        x_init[:, : ids.shape[1]] = ids
        fixed = torch.zeros(1, seq_len, dtype=torch.bool)
        fixed[0, : ids.shape[1]] = given
    chunks = []
    was_training = isinstance(model, torch.nn.Module) and model.training
    if isinstance(model, torch.nn.Module):
        model.eval()  # dropout off: sampling (and the cache) assume a deterministic denoiser
    with tqdm(total=num, desc=f"sampling ({steps} steps)", unit="seq", disable=not progress) as bar:
        for start in range(0, num, batch_size):
            n = min(batch_size, num - start)
            rows = x_init if x_init is None or x_init.shape[0] == 1 else x_init[start : start + n]
            out = sampler.sample(n, seq_len, steps, x_init=rows, fixed=fixed, t_min=t_min, generator=gen, device=device)
            chunks.append(out.x.cpu())
            bar.update(n)
    if was_training and isinstance(model, torch.nn.Module):
        model.train()
    return torch.cat(chunks)
