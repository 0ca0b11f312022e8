"""DiT denoiser: a bidirectional transformer with adaLN-zero conditioning and rotary positions.

Peebles & Xie 2023 (DiT) blocks as used by MDLM (Sahoo et al. 2024) and LADD App. D: each block
normalizes, modulates by the conditioning vector (shift, scale), applies attention or MLP, and adds the
result through a zero-initialized gate, so a fresh block is the identity.

With ``causal=True`` the same blocks attend only to earlier positions: the autoregressive reference of
matched size (:class:`augdiff.ar.ARModel`), which decodes incrementally through a :class:`KVCache`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.nn.layers import LocalMixer, Rotary, TimestepEmbedding, apply_rotary, init_adaln_zero, modulate
from augdiff.nn.protocol import NetworkOutput, TransformerShape

__all__ = ["DiTConfig", "DiT", "DiTBlock", "KVCache"]


@dataclass
class DiTConfig:
    """Shape of a DiT. ``vocab_size`` counts every input/output state, the mask included.

    ``causal``: each position attends to itself and earlier positions only (the AR model); bidirectional
    otherwise (the diffusion denoisers).
    """

    vocab_size: int
    hidden_size: int = 64
    n_layers: int = 4
    n_heads: int = 4
    mlp_ratio: int = 4
    dropout: float = 0.0
    time_conditioning: bool = False
    # Width of the adaLN conditioning vector; MDLM's 128 gives the papers' 169M "small" at a 50k vocabulary.
    cond_dim: int = 128
    causal: bool = False
    # Kernel of a depthwise convolution added to the token embeddings (layers.LocalMixer); 0: none.
    local_mixer: int = 0
    # LayerNorms with a learned scale (no bias), as MDLM's DiT has them: needed to load its checkpoints.
    norm_affine: bool = False

    def __post_init__(self) -> None:
        assert self.hidden_size % self.n_heads == 0, (
            f"hidden_size={self.hidden_size} must be divisible by n_heads={self.n_heads}"
        )
        assert not (self.causal and self.local_mixer), "the local mixer is for bidirectional networks"


class KVCache:
    """Keys and values of the positions decoded so far, one slot per block, for incremental causal decoding.

    Slots are allocated for ``capacity`` positions at the first write (in the keys' dtype and device).
    :meth:`DiT.forward` with ``cache=`` writes the new positions ``length … length+n−1`` into every block's
    slot and then advances :attr:`length`, so a step costs one forward over the n new positions.

    Example:
        >>> cache = KVCache(n_layers=2, capacity=16)
        >>> logits = net(bos[:, None], t, cache=cache).logits  # position 0
        >>> logits = net(next_token[:, None], t, cache=cache).logits  # position 1 attends to 0 and 1
    """

    def __init__(self, n_layers: int, capacity: int) -> None:
        self.capacity = capacity
        self.length = 0
        self.keys: list[Tensor | None] = [None] * n_layers
        self.values: list[Tensor | None] = [None] * n_layers

    def extend(self, layer: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Store ``k``, ``v`` ``[B, H, n, d]`` of the new positions; return every position's so far."""
        start, end = self.length, self.length + k.shape[2]
        assert end <= self.capacity, f"KVCache holds {self.capacity} positions; {end} asked for"
        keys, values = self.keys[layer], self.values[layer]
        if keys is None or values is None:
            shape = (k.shape[0], k.shape[1], self.capacity, k.shape[3])
            keys, values = k.new_empty(shape), v.new_empty(shape)
            self.keys[layer], self.values[layer] = keys, values
        keys[:, :, start:end] = k
        values[:, :, start:end] = v
        return keys[:, :, :end], values[:, :, :end]


class DiTBlock(nn.Module):
    """One adaLN-zero transformer block with full (bidirectional) or causal self-attention."""

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.n_heads = cfg.n_heads
        self.causal = cfg.causal
        self.norm1 = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, bias=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(cfg.mlp_ratio * d, d)
        )
        self.adaln = nn.Linear(cfg.cond_dim, 6 * d)
        # on the residual branches only, as MDLM's DDiT and the LADD authors' MM-DiT (no attention dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def attention(self, h: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None, layer: int = 0) -> Tensor:
        """Self-attention over ``h`` ``[B, n, D]``; with a cache, ``h`` holds the n positions after the cached
        ones (``cos``/``sin`` are theirs) and attends to the cached keys too."""
        b, n, d = h.shape
        q, k, v = self.qkv(h).view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        mask, causal = None, self.causal
        if cache is not None:
            past = cache.length
            k, v = cache.extend(layer, k, v)
            if past > 0:
                # SDPA's is_causal aligns the mask top-left; new query i (position past+i) sees keys ≤ past+i.
                causal = False
                if n > 1:
                    mask = torch.ones(n, past + n, dtype=torch.bool, device=h.device).tril(diagonal=past)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.attn_out(out.transpose(1, 2).reshape(b, n, d))

    def forward(
        self, h: Tensor, c: Tensor, cos: Tensor, sin: Tensor, cache: KVCache | None = None, layer: int = 0
    ) -> Tensor:
        shift1, scale1, gate1, shift2, scale2, gate2 = self.adaln(c).chunk(6, dim=-1)
        attn = self.attention(modulate(self.norm1(h), shift1, scale1), cos, sin, cache, layer)
        h = h + gate1.unsqueeze(1) * self.drop(attn)
        h = h + gate2.unsqueeze(1) * self.drop(self.mlp(modulate(self.norm2(h), shift2, scale2)))
        return h


class DiT(nn.Module):
    r"""Diffusion transformer mapping noisy tokens (or input embeddings) to logits over all states.

    Example:
        >>> net = DiT(DiTConfig(vocab_size=3, hidden_size=32, n_layers=2, n_heads=2))
        >>> net(torch.full((4, 16), 2), torch.rand(4)).logits.shape
        torch.Size([4, 16, 3])
    """

    def __init__(self, cfg: DiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.mixer = LocalMixer(d, cfg.local_mixer) if cfg.local_mixer else nn.Identity()
        self.time_embed = TimestepEmbedding(cfg.cond_dim)
        self.rotary = Rotary(d // cfg.n_heads)
        self.blocks = nn.ModuleList(DiTBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=cfg.norm_affine, bias=False)
        self.final_adaln = nn.Linear(cfg.cond_dim, 2 * d)
        self.head = nn.Linear(d, cfg.vocab_size)
        self.reset_parameters()

    @property
    def time_conditioned(self) -> bool:
        return self.cfg.time_conditioning

    def reset_parameters(self) -> None:
        init_adaln_zero(self, [*(block.adaln for block in self.blocks), self.final_adaln, self.head])

    def embed_tokens(self, x: Tensor) -> Tensor:
        """The token embedding table applied to ids ``[B, L]`` → ``[B, L, D]``."""
        return self.embed(x)

    def embedding_weight(self) -> Tensor:
        """The token embedding table ``[vocab_size, D]`` (CADD's :math:`w_\theta`)."""
        return self.embed.weight

    def transformer_shape(self, seq_len: int) -> TransformerShape:
        """Eq 77's figures (:mod:`augdiff.flops`): one attention over the ``seq_len`` tokens."""
        return TransformerShape(seq_len, self.cfg.hidden_size, self.cfg.n_layers, self.cfg.mlp_ratio)

    def features(
        self, x_t: Tensor | None, t: Tensor, input_embeds: Tensor | None = None, *, cache: KVCache | None = None
    ) -> Tensor:
        """The final normalized (and adaLN-modulated) hidden states ``[B, L, D]`` that the head reads.

        Arguments as in :meth:`forward`.
        """
        h = self.embed_tokens(x_t) if input_embeds is None else input_embeds
        assert h.dim() == 3 and h.shape[-1] == self.cfg.hidden_size, f"input of shape {tuple(h.shape)}"
        h = self.mixer(h)
        b, n, _ = h.shape
        t = t.reshape(b) if self.time_conditioned else torch.zeros(b, device=h.device)
        c = F.silu(self.time_embed(t))
        if cache is None:
            cos, sin = self.rotary(n, h.device)
        else:
            assert self.cfg.causal, "a KV cache is exact only for causal attention"
            cos, sin = self.rotary(cache.capacity, h.device)
            cos, sin = cos[cache.length : cache.length + n], sin[cache.length : cache.length + n]
        for layer, block in enumerate(self.blocks):
            h = block(h, c, cos, sin, cache, layer)
        if cache is not None:
            cache.length += n
        shift, scale = self.final_adaln(c).chunk(2, dim=-1)
        return modulate(self.final_norm(h), shift, scale)

    def forward(
        self, x_t: Tensor | None, t: Tensor, input_embeds: Tensor | None = None, *, cache: KVCache | None = None
    ) -> NetworkOutput:
        """Logits ``[B, L, vocab_size]`` for tokens ``x_t`` ``[B, L]`` at times ``t`` ``[B]``.

        ``input_embeds`` ``[B, L, D]`` replaces the token embedding (latent channels fuse into it).
        Without time conditioning, ``t`` is ignored and the adaLN input is the embedding of t=0.
        ``cache`` (causal networks only): ``x_t`` holds the positions after the cached ones, whose keys and
        values are reused; the new ones are added to it.
        """
        return NetworkOutput(self.head(self.features(x_t, t, input_embeds, cache=cache)))
