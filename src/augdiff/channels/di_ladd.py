r"""Di-LADD: VQ codes as the latent, diffused by the same masked process as the tokens (LADD §3, App. C.2).

The encoder output is quantized by ``vector_quantize_pytorch.VectorQuantize`` (cosine similarity, EMA codebook
with decay, commitment weight, dead-code replacement, k-means init, straight-through estimator); the code
sequence c_0 is masked with its own schedule α_y, the networks read ``where(masked, m_y, codebook[c])`` with a
learnable latent-mask embedding m_y, and the latent head's logits over codes are trained by the masked
cross-entropy of Eq 13 — :func:`augdiff.losses.masked_diffusion_nll` and :func:`augdiff.processes.unmask_step`,
the token channel's own code.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from augdiff.channels.base import ChannelContext
from augdiff.channels.ladd import LADDChannel, ladd_parts
from augdiff.errors import AugdiffError
from augdiff.extras import require
from augdiff.losses import masked_diffusion_nll
from augdiff.processes import forward_mask, subs_log_probs, unmask_step
from augdiff.schedules import MaskSchedule, make_mask_schedule

__all__ = ["build", "head_width", "DiLADDChannel"]


class DiLADDChannel(LADDChannel):
    """Discrete latents: ``[B, L′]`` code ids in 0..K−1, K = the latent mask."""

    name = "di-ladd"

    def __init__(
        self,
        encoder: nn.Module,
        prior: nn.Module,
        schedule: MaskSchedule,
        *,
        latent_dim: int,
        codebook_size: int,
        vq_decay: float = 0.99,
        commitment_weight: float = 0.25,
        dead_code_threshold: float = 2.0,
        kmeans_init: bool = True,
        **kwargs: object,
    ) -> None:
        require("vector_quantize_pytorch", "ladd", "method=di-ladd (its vector quantizer)")
        from vector_quantize_pytorch import VectorQuantize

        super().__init__(encoder, prior, **kwargs)  # type: ignore[arg-type]
        self.schedule = schedule
        self.codebook_size = codebook_size
        self.vq = VectorQuantize(
            dim=latent_dim,
            codebook_size=codebook_size,
            decay=vq_decay,
            commitment_weight=commitment_weight,
            use_cosine_sim=True,
            threshold_ema_dead_code=dead_code_threshold,
            kmeans_init=kmeans_init,
            kmeans_iters=10,
        )
        self.mask_embedding = nn.Parameter(torch.randn(latent_dim) / latent_dim**0.5)
        if self.stage == 2:
            self.vq.requires_grad_(False)

    def frozen_modules(self) -> nn.Module:
        return nn.ModuleList([self.encoder, self.vq])

    def encode(self, x0: Tensor, blank: Tensor | None) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Codes of ``x0``, the commitment loss (training only) and the straight-through quantized vectors."""
        e = self.encoder(x0, blank) if blank is not None else self.encoder(x0)
        quantized, codes, commit = self.vq(e.float())
        return codes, commit if self.training else None, quantized

    def null_latent(self, y0: Tensor) -> Tensor:
        """All codes masked: the latent carries nothing (Di-LADD's natural null, App. C.3)."""
        return torch.full_like(y0, self.codebook_size)

    def noise(self, y0: Tensor, t_y: Tensor, generator: torch.Generator | None) -> Tensor:
        return forward_mask(y0, self.schedule.alpha(t_y), self.codebook_size, generator)

    def latent_input(self, y_t: Tensor, clean: Tensor | None = None) -> Tensor:
        masked = (y_t == self.codebook_size).unsqueeze(-1)
        # ``clean`` equals the codebook rows of y_0 and carries the straight-through gradient to the encoder.
        vectors = self.vq.codebook[y_t.clamp(max=self.codebook_size - 1)] if clean is None else clean
        return torch.where(masked, self.mask_embedding.to(vectors.dtype), vectors)

    def latent_loss(self, head: Tensor, y0: Tensor, y_t: Tensor, t_y: Tensor) -> Tensor:
        weight = self.schedule.elbo_weight(t_y) if self.latent_weighting == "elbo" else torch.ones_like(t_y)
        log_p = subs_log_probs(head, y_t, self.codebook_size)
        return masked_diffusion_nll(log_p, y0, y_t, weight.float(), self.codebook_size) / y0.shape[1]

    def terminal(self, batch: int, device: torch.device, generator: torch.Generator | None) -> Tensor:
        return torch.full((batch, self.prior.latent_len), self.codebook_size, dtype=torch.long, device=device)

    def reverse(
        self, y: Tensor, head: Tensor, t: float, s: float, generator: torch.Generator | None, eta: float = 0.0
    ) -> Tensor:
        log_p = subs_log_probs(head, y, self.codebook_size)
        alpha_t = float(self.schedule.alpha(torch.tensor(t, dtype=torch.float64)))
        alpha_s = float(self.schedule.alpha(torch.tensor(s, dtype=torch.float64)))
        return unmask_step(y, log_p, alpha_t, alpha_s, self.codebook_size, generator)


def head_width(section: Any) -> int:
    """The latent head gives logits over the K codes and the latent mask."""
    return int(section.codebook_size) + 1


def build(section: Any, context: ChannelContext) -> DiLADDChannel:
    """Di-LADD from the ``ladd.*`` section; schedule ``auto`` is the authors' α_y = 1 − t² (their code)."""
    if section.latent_target != "y0":
        raise AugdiffError(
            f"ladd.latent_target={section.latent_target} is for Co-LADD's continuous latent; Di-LADD's head predicts "
            "code logits (drop it)"
        )
    encoder, prior, common = ladd_parts(section, context, head_width(section))
    schedule = "polynomial" if section.schedule == "auto" else section.schedule
    return DiLADDChannel(
        encoder,
        prior,
        make_mask_schedule(schedule),
        latent_dim=section.latent_dim,
        codebook_size=section.codebook_size,
        vq_decay=section.vq_decay,
        commitment_weight=section.commitment_weight,
        dead_code_threshold=section.dead_code_threshold,
        kmeans_init=section.kmeans_init,
        **common,
    )
