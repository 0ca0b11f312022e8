"""LADD's small latent networks: the trainable encoder E_φ and the latent-only denoiser (App. D).

The encoder is a DiT trunk over the clean tokens whose hidden states are pooled to L′ positions and projected
to width d′; the latent denoiser (used by sequential inference to draw y_0 before any token step) is an MLP
for a single latent vector or a small DiT over latent positions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.nn.dit import DiTBlock, DiTConfig
from augdiff.nn.layers import Rotary, TimestepEmbedding, init_adaln_zero, modulate

__all__ = ["LatentEncoder", "LatentDenoiser", "POOLS", "READOUTS"]

POOLS = ("last", "none", "mean", "patch")
READOUTS = ("adaln", "linear")


class LatentEncoder(nn.Module):
    """Tokens ``[B, L]`` → pre-normalization latents ``[B, L′, d′]`` (LADD App. D, "Learned encoder").

    Pooling: ``last`` reads the rightmost L′ hidden states (the paper's choice, App. D); ``none`` keeps one
    latent per token (L′ = L); ``mean`` averages L′ contiguous chunks of nearly equal size (adaptive average
    pooling); ``patch`` concatenates L/L′ consecutive hidden states and projects.

    With rotary (relative) positions only, the trunk is nearly translation-equivariant, so ``mean`` pooling
    cannot see an absolute shift (the sawtooth's latent s); ``last`` and ``patch`` can.

    Readout: ``adaln`` is the authors' final layer (their ``EncoderDiTModel``, GitHub darioShar/LADD): LayerNorm,
    adaLN shift/scale from the constant conditioning (zero-initialized), then a Xavier-initialized Linear to d′,
    with adaLN-zero blocks like every DiT here; ``linear`` is an affine LayerNorm and a Linear with the blocks'
    default (random) adaLN initialization. ``dropout`` acts on the blocks' residual branches (the authors' 0.1).
    """

    def __init__(
        self,
        vocab_size: int,
        seq_len: int,
        latent_len: int,
        latent_dim: int,
        shape: dict[str, int],
        pool: str,
        readout: str = "adaln",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        assert pool in POOLS, pool
        if pool == "none" and latent_len != seq_len:
            raise ValueError(f"pool='none' needs latent_len == seq_len, got {latent_len} and {seq_len}")
        if pool == "patch" and seq_len % latent_len:
            raise ValueError(f"pool='patch' needs seq_len ({seq_len}) divisible by latent_len ({latent_len})")
        assert readout in READOUTS, readout
        cfg = DiTConfig(vocab_size=vocab_size, dropout=dropout, **shape)
        self.pool, self.latent_len, self.readout = pool, latent_len, readout
        self.embed = nn.Embedding(vocab_size, cfg.hidden_size)
        # A learned constant stands in for the time conditioning the DiT blocks expect (the encoder sees clean data).
        self.cond = nn.Parameter(torch.randn(cfg.cond_dim) * 0.02)
        self.rotary = Rotary(cfg.hidden_size // cfg.n_heads)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.n_layers))
        self.norm = nn.LayerNorm(cfg.hidden_size, elementwise_affine=readout == "linear")
        width = cfg.hidden_size * (seq_len // latent_len if pool == "patch" else 1)
        self.proj = nn.Linear(width, latent_dim)
        if readout == "adaln":
            self.final_adaln = nn.Linear(cfg.cond_dim, 2 * cfg.hidden_size)
            init_adaln_zero(self, [*(b.adaln for b in self.blocks), self.final_adaln])
            nn.init.xavier_uniform_(self.proj.weight)
            # The authors' constant is SiLU(time embedding of t = 0), of order 1: a 0.02-scale constant would
            # leave zero-initialized gates with gradients 50× too small to open.
            nn.init.normal_(self.cond, std=1.0)

    def forward(self, x0: Tensor, blank: Tensor | None = None) -> Tensor:
        """Latents of ``x0``; positions in ``blank`` ``[B, L]`` enter as zero embeddings (App. C.3, p_drop)."""
        h = self.embed(x0)
        if blank is not None:
            h = h.masked_fill(blank.unsqueeze(-1), 0.0)
        b, n, _ = h.shape
        c = F.silu(self.cond).expand(b, -1)
        cos, sin = self.rotary(n, h.device)
        for block in self.blocks:
            h = block(h, c, cos, sin)
        h = self.norm(h)
        if self.readout == "adaln":
            h = modulate(h, *self.final_adaln(c).chunk(2, dim=-1))
        if self.pool == "last":
            h = h[:, -self.latent_len :]
        elif self.pool == "mean":
            h = F.adaptive_avg_pool1d(h.transpose(1, 2), self.latent_len).transpose(1, 2)
        elif self.pool == "patch":
            h = h.reshape(b, self.latent_len, -1)
        return self.proj(h)


class LatentDenoiser(nn.Module):
    """Latent-only denoiser ``(y_t, t) → head`` for sequential inference (LADD App. D).

    ``kind='mlp'`` flattens the L′ latents (meant for L′ = 1, the sawtooth setting); ``kind='dit'`` runs DiT
    blocks over the L′ latent positions with adaLN time conditioning.
    """

    def __init__(self, latent_len: int, latent_in: int, latent_out: int, kind: str, hidden: int, n_layers: int) -> None:
        super().__init__()
        assert kind in ("mlp", "dit"), kind
        self.kind, self.latent_len, self.latent_out = kind, latent_len, latent_out
        self.time_embed = TimestepEmbedding(hidden)
        if kind == "mlp":
            layers: list[nn.Module] = [nn.Linear(latent_len * latent_in + hidden, hidden), nn.SiLU()]
            for _ in range(n_layers - 1):
                layers += [nn.Linear(hidden, hidden), nn.SiLU()]
            layers.append(nn.Linear(hidden, latent_len * latent_out))
            self.mlp = nn.Sequential(*layers)
            return
        heads = 2 if hidden % 4 == 0 else 1
        cfg = DiTConfig(vocab_size=1, hidden_size=hidden, n_layers=n_layers, n_heads=heads, cond_dim=hidden)
        self.inp = nn.Linear(latent_in, hidden)
        self.rotary = Rotary(hidden // heads)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(n_layers))
        self.norm = nn.LayerNorm(hidden)
        self.out = nn.Linear(hidden, latent_out)

    def forward(self, y: Tensor, t: Tensor) -> Tensor:
        """Head output ``[B, L′, latent_out]`` for latents ``y`` ``[B, L′, latent_in]`` at times ``t`` ``[B]``."""
        b = y.shape[0]
        temb = self.time_embed(t.reshape(b))
        if self.kind == "mlp":
            out = self.mlp(torch.cat([y.reshape(b, -1), temb], dim=-1))
            return out.view(b, self.latent_len, self.latent_out)
        h, c = self.inp(y), F.silu(temb)
        cos, sin = self.rotary(h.shape[1], h.device)
        for block in self.blocks:
            h = block(h, c, cos, sin)
        return self.out(self.norm(h))
