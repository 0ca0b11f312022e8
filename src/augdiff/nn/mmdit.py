"""MM-DiT joint denoiser of LADD (App. D; Esser et al. 2024): a token stream and a latent stream.

The two streams are concatenated for attention, so tokens and latents interact in every layer, while each
stream keeps its own input embedding, qkv/out projections, MLP, norms, adaLN modulation and output head.
The conditioning vector is :math:`c = \\mathrm{emb}_x(t_x) + \\mathrm{emb}_y(t_y)`; like MDLM and LADD (App. E),
the token time is dropped unless ``time_conditioning`` is set, the latent time is always used.

Two details follow the LADD authors' code (GitHub darioShar/LADD, ``JointDiscreteDiTModel``): latents enter
through an MLP, Linear(d′, 4D) → SiLU → Linear(4D, D) (``latent_embed="mlp"``; a single Linear feeds the first
block's LayerNorm, which would discard the latent's norm: the signal-to-noise ratio the latent's scale carries),
and the rotary positions of the latent stream continue after the tokens', L … L+L′−1
(``latent_positions="after"``; ``"restart"`` numbers them 0 … L′−1, so latent j shares token j's position).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.nn.dit import DiTConfig
from augdiff.nn.layers import LocalMixer, Rotary, TimestepEmbedding, apply_rotary, init_adaln_zero, modulate
from augdiff.nn.protocol import NetworkOutput, TransformerShape

__all__ = ["MMDiTConfig", "MMDiT", "latent_embedding", "latent_start"]

STREAMS = ("x", "y")
LATENT_EMBEDS = ("mlp", "linear")
LATENT_POSITIONS = ("after", "restart")


def latent_embedding(kind: str, latent_in: int, hidden: int) -> nn.Module:
    """The latent stream's input embedding: the authors' MLP (keeps the latent's norm) or one Linear."""
    if kind == "linear":
        return nn.Linear(latent_in, hidden)
    return nn.Sequential(nn.Linear(latent_in, 4 * hidden), nn.SiLU(), nn.Linear(4 * hidden, hidden))


def latent_start(seq_len: int, kind: str) -> int:
    """The latent stream's first rotary position (the tokens' is 0): L for ``after``, 0 for ``restart``."""
    return seq_len if kind == "after" else 0


@dataclass
class MMDiTConfig(DiTConfig):
    """Shape of an MM-DiT: a DiT's shape plus the latent stream's.

    Attributes:
        latent_len: L′ latent positions; latent_in: width of the latent vectors fed in (d′);
        latent_out: width of the latent head (d′ for Co-LADD's ŷ_0, codebook size + 1 for Di-LADD's logits);
        latent_embed: ``mlp`` or ``linear`` input embedding of the latents; latent_positions: ``after`` (rotary
        positions L … L+L′−1) or ``restart`` (0 … L′−1).
    """

    latent_len: int = 1
    latent_in: int = 32
    latent_out: int = 32
    latent_embed: str = "mlp"
    latent_positions: str = "after"

    def __post_init__(self) -> None:
        super().__post_init__()
        assert self.latent_embed in LATENT_EMBEDS, f"latent_embed={self.latent_embed!r}"
        assert self.latent_positions in LATENT_POSITIONS, f"latent_positions={self.latent_positions!r}"


class _Stream(nn.Module):
    """The per-modality half of an MM-DiT block: norms, projections, MLP and adaLN for one stream."""

    def __init__(self, cfg: MMDiTConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.norm1 = nn.LayerNorm(d, elementwise_affine=False)
        self.qkv = nn.Linear(d, 3 * d, bias=False)
        self.attn_out = nn.Linear(d, d, bias=False)
        self.norm2 = nn.LayerNorm(d, elementwise_affine=False)
        self.mlp = nn.Sequential(
            nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(approximate="tanh"), nn.Linear(cfg.mlp_ratio * d, d)
        )
        self.adaln = nn.Linear(cfg.cond_dim, 6 * d)


class MMDiTBlock(nn.Module):
    """Joint attention over [tokens; latents] with modality-specific weights (adaLN-zero gates)."""

    def __init__(self, cfg: MMDiTConfig) -> None:
        super().__init__()
        self.n_heads = cfg.n_heads
        self.streams = nn.ModuleDict({s: _Stream(cfg) for s in STREAMS})
        # on the residual branches only, as MDLM's DDiT and the LADD authors' MM-DiT (no attention dropout)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, hs: dict[str, Tensor], c: Tensor, rope: dict[str, tuple[Tensor, Tensor]]) -> dict[str, Tensor]:
        mods = {s: self.streams[s].adaln(c).chunk(6, dim=-1) for s in STREAMS}
        qs, ks, vs = [], [], []
        for s in STREAMS:
            h, (shift, scale, *_rest) = hs[s], mods[s]
            b, n, d = h.shape
            qkv = self.streams[s].qkv(modulate(self.streams[s].norm1(h), shift, scale))
            q, k, v = qkv.view(b, n, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
            cos, sin = rope[s]
            qs.append(apply_rotary(q, cos, sin))
            ks.append(apply_rotary(k, cos, sin))
            vs.append(v)
        out = F.scaled_dot_product_attention(torch.cat(qs, 2), torch.cat(ks, 2), torch.cat(vs, 2))
        out = out.transpose(1, 2).flatten(2)
        split = out.split([hs[s].shape[1] for s in STREAMS], dim=1)
        new = {}
        for s, o in zip(STREAMS, split, strict=True):
            stream, (_, _, gate1, shift2, scale2, gate2) = self.streams[s], mods[s]
            h = hs[s] + gate1.unsqueeze(1) * self.drop(stream.attn_out(o))
            h = h + gate2.unsqueeze(1) * self.drop(stream.mlp(modulate(stream.norm2(h), shift2, scale2)))
            new[s] = h
        return new


class MMDiT(nn.Module):
    """Joint token + latent denoiser: ``(x_t, t, latent, latent_t)`` → token logits and latent head output.

    Example:
        >>> net = MMDiT(MMDiTConfig(vocab_size=3, latent_len=1, latent_in=8, latent_out=8))
        >>> out = net(torch.full((4, 16), 2), torch.ones(4), latent=torch.randn(4, 1, 8), latent_t=torch.ones(4))
        >>> out.logits.shape, out.latent.shape
        (torch.Size([4, 16, 3]), torch.Size([4, 1, 8]))
    """

    def __init__(self, cfg: MMDiTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.mixer = LocalMixer(d, cfg.local_mixer) if cfg.local_mixer else nn.Identity()
        self.latent_embed = latent_embedding(cfg.latent_embed, cfg.latent_in, d)
        self.time_embed = nn.ModuleDict({s: TimestepEmbedding(cfg.cond_dim) for s in STREAMS})
        self.rotary = Rotary(d // cfg.n_heads)
        self.blocks = nn.ModuleList(MMDiTBlock(cfg) for _ in range(cfg.n_layers))
        self.final_norm = nn.LayerNorm(d, elementwise_affine=False)
        self.final_adaln = nn.ModuleDict({s: nn.Linear(cfg.cond_dim, 2 * d) for s in STREAMS})
        self.heads = nn.ModuleDict({"x": nn.Linear(d, cfg.vocab_size), "y": nn.Linear(d, cfg.latent_out)})
        self.reset_parameters()

    @property
    def time_conditioned(self) -> bool:
        return self.cfg.time_conditioning

    def reset_parameters(self) -> None:
        zero = [st.adaln for b in self.blocks for st in b.streams.values()]
        init_adaln_zero(self, [*zero, *self.final_adaln.values(), *self.heads.values()])
        if self.cfg.latent_embed == "mlp":
            # PyTorch's default (Kaiming-uniform) init, as in the authors' code: two N(0, 0.02) layers would make a
            # unit latent's embedding ~1e-3, under the first LayerNorm's ε, and the MLP nearly linear.
            for layer in self.latent_embed.modules():
                if isinstance(layer, nn.Linear):
                    layer.reset_parameters()

    def embed_tokens(self, x: Tensor) -> Tensor:
        return self.embed(x)

    def embedding_weight(self) -> Tensor:
        return self.embed.weight

    def transformer_shape(self, seq_len: int) -> TransformerShape:
        """Eq 77's figures: one attention spans the tokens and the latents together."""
        cfg = self.cfg
        return TransformerShape(seq_len + cfg.latent_len, cfg.hidden_size, cfg.n_layers, cfg.mlp_ratio)

    def _rope(self, n_x: int, n_y: int, device: torch.device) -> dict[str, tuple[Tensor, Tensor]]:
        """Rotary tables of both streams, cut from one table over the longest position used."""
        y0 = latent_start(n_x, self.cfg.latent_positions)
        cos, sin = self.rotary(max(n_x, y0 + n_y), device)
        return {"x": (cos[:n_x], sin[:n_x]), "y": (cos[y0 : y0 + n_y], sin[y0 : y0 + n_y])}

    def forward(
        self,
        x_t: Tensor | None,
        t: Tensor,
        input_embeds: Tensor | None = None,
        latent: Tensor | None = None,
        latent_t: Tensor | None = None,
    ) -> NetworkOutput:
        """Token logits ``[B, L, vocab_size]`` and the latent head ``[B, L′, latent_out]``.

        ``latent`` ``[B, L′, latent_in]`` is the noisy latent y_t (Co-LADD) or the embedded codes (Di-LADD) at
        latent time ``latent_t`` ``[B]``.
        """
        assert latent is not None and latent_t is not None, "the MM-DiT needs the latent stream"
        h = self.embed_tokens(x_t) if input_embeds is None else input_embeds
        b = h.shape[0]
        t_x = t.reshape(b) if self.time_conditioned else torch.zeros(b, device=h.device)
        c = F.silu(self.time_embed["x"](t_x) + self.time_embed["y"](latent_t.reshape(b)))
        hs = {"x": self.mixer(h), "y": self.latent_embed(latent.to(h.dtype))}
        rope = self._rope(hs["x"].shape[1], hs["y"].shape[1], h.device)
        for block in self.blocks:
            hs = block(hs, c, rope)
        outs = []
        for s in STREAMS:
            shift, scale = self.final_adaln[s](c).chunk(2, dim=-1)
            outs.append(self.heads[s](modulate(self.final_norm(hs[s]), shift, scale)))
        return NetworkOutput(outs[0], outs[1])
