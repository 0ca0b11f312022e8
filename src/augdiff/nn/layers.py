"""Building blocks shared by the transformers: rotary embeddings, time embedding, adaLN modulation."""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

__all__ = ["Rotary", "apply_rotary", "TimestepEmbedding", "modulate", "init_adaln_zero"]


class Rotary(nn.Module):
    """Rotary position embeddings (Su et al. 2021): cos/sin tables for a sequence length, cached."""

    def __init__(self, head_dim: int, base: float = 10_000.0) -> None:
        super().__init__()
        assert head_dim % 2 == 0, f"rotary embeddings need an even head dimension, got {head_dim}"
        inv_freq = 1.0 / base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self._cache: tuple[int, torch.device, Tensor, Tensor] | None = None

    def forward(self, seq_len: int, device: torch.device) -> tuple[Tensor, Tensor]:
        """cos and sin tables ``[seq_len, head_dim]``."""
        if self._cache is None or self._cache[0] != seq_len or self._cache[1] != device:
            pos = torch.arange(seq_len, device=device, dtype=torch.float32)
            freqs = torch.outer(pos, self.inv_freq.to(device))
            emb = torch.cat([freqs, freqs], dim=-1)
            self._cache = (seq_len, device, emb.cos(), emb.sin())
        return self._cache[2], self._cache[3]


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate ``x`` ``[B, H, L, D]`` by position (half-split convention)."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class TimestepEmbedding(nn.Module):
    """Sinusoidal features of t ∈ [0, 1] (scaled by 1000) followed by a two-layer MLP (DiT, Peebles & Xie 2023)."""

    def __init__(self, dim: int, freq_dim: int = 256) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t: Tensor) -> Tensor:
        half = self.freq_dim // 2
        freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
        args = 1000.0 * t.float()[:, None] * freqs[None]
        features = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
        return self.mlp(features.to(self.mlp[0].weight.dtype))


class LocalMixer(nn.Module):
    """``h + conv(h)``: a depthwise 1-D convolution over positions (kernel ``k``, same length), added to the token
    embeddings before the first block.

    Why: a masked position sees both of its neighbours unmasked only with probability (1−t)², and bidirectional
    attention at initialization averages over the whole row, so information held in neighbouring tokens reaches
    a masked diffusion model late (a plateau at the unigram loss). The convolution hands each position its
    neighbours' embeddings from the first step. Not for causal networks (a KV-cached step sees only new tokens).
    """

    def __init__(self, hidden_size: int, kernel: int) -> None:
        super().__init__()
        assert kernel >= 1 and kernel % 2 == 1, f"the local mixer's kernel must be odd, got {kernel}"
        self.conv = nn.Conv1d(hidden_size, hidden_size, kernel, padding=kernel // 2, groups=hidden_size, bias=False)

    def forward(self, h: Tensor) -> Tensor:
        return h + self.conv(h.transpose(1, 2)).transpose(1, 2)


def modulate(x: Tensor, shift: Tensor, scale: Tensor) -> Tensor:
    """adaLN modulation of ``x`` ``[B, L, D]`` by per-sequence ``shift``/``scale`` ``[B, D]``."""
    return x * (1.0 + scale.unsqueeze(1)) + shift.unsqueeze(1)


def init_adaln_zero(model: nn.Module, zero: list[nn.Linear]) -> None:
    """DiT initialization: N(0, 0.02) linears and embeddings with zero biases, then adaLN-zero: the layers in
    ``zero`` (modulations, output heads) start at exactly zero so that every residual branch is the identity."""
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
            if getattr(module, "bias", None) is not None:
                nn.init.zeros_(module.bias)
    for layer in zero:
        nn.init.zeros_(layer.weight)
        nn.init.zeros_(layer.bias)
