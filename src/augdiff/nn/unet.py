r"""ADM U-Net denoiser over pixel tokens (CADD §5.2 and App. B.2).

CADD models an ``H × W × C`` image as ``L = H·W·C`` tokens, one per channel value, in channels-last order
(:mod:`augdiff.data.images`), and follows MDM-Prime (Chao et al. 2025) and Gat et al. 2024 in using the U-Net of
ADM (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs", §3) as its image denoiser. This module is that U-Net
behind the same token interface as :class:`augdiff.nn.dit.DiT`:

.. math::

    e = w_\theta(x_t) \text{ (or the channel's input embeds)} \in \mathbb{R}^{L \times D}
    \;\to\; \mathbb{R}^{C D \times H \times W}
    \;\xrightarrow{\text{U-Net}}\; \mathbb{R}^{C D \times H \times W} \to u \in \mathbb{R}^{L \times D},
    \qquad \text{logits} = W_{out}\,\mathrm{LN}(e + u)

Each pixel's C channel-token embeddings are concatenated into its feature vector. The U-Net is ADM's: residual
blocks (GroupNorm, SiLU, 3×3 conv) with the time embedding injected as a scale and shift after the second
GroupNorm (AdaGN, ADM §3 "use_scale_shift_norm"), multi-head self-attention at chosen resolutions and in the
middle, strided-conv downsampling, nearest-neighbour + conv upsampling, and skip connections from every stage
of the way down to the way up. The last conv of each residual block, each attention output and the U-Net's
output conv start at zero, so every block (and the whole U-Net branch) starts as the identity; the token-space
skip ``e + u`` lets a fresh network's logits still depend on its input.

Example:
    >>> net = UNet(unet_config("xxs", vocab_size=18, image_shape=(8, 8, 1)))
    >>> net(torch.full((2, 64), 17), torch.rand(2)).logits.shape
    torch.Size([2, 64, 18])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.errors import AugdiffError
from augdiff.nn.layers import TimestepEmbedding
from augdiff.nn.protocol import NetworkOutput

__all__ = ["UNetConfig", "UNet", "UNetShapeError", "UNET_SIZES", "unet_config"]


class UNetShapeError(AugdiffError, ValueError):
    """A U-Net shape that cannot work (a ValueError; an AugdiffError so the CLI prints it as one line)."""


@dataclass
class UNetConfig:
    """Shape of an ADM U-Net over ``height × width × channels`` pixel tokens.

    ``vocab_size`` counts every input/output state, the mask included; ``hidden_size`` is the token embedding
    width D (a pixel's feature vector has ``channels · D`` entries). Level ℓ works at ``height / 2^ℓ ×
    width / 2^ℓ`` with ``base_channels · channel_mults[ℓ]`` channels and ``res_blocks`` residual blocks (one
    more on the way up, as ADM). ``attention_resolutions`` lists feature-map heights (the side, for square
    images) at which every residual block is followed by self-attention; the middle block always attends.
    """

    vocab_size: int
    height: int
    width: int
    channels: int
    hidden_size: int = 32
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2)
    res_blocks: int = 1
    attention_resolutions: tuple[int, ...] = ()
    n_heads: int = 4
    dropout: float = 0.0
    time_conditioning: bool = False
    # ADM's GroupNorm has 32 groups; the small presets need fewer (base_channels must be a multiple).
    norm_groups: int = 32
    # LADD's latent stream (latent_len 0: none): L′ latent vectors of width latent_in in, latent_out each out
    latent_len: int = 0
    latent_in: int = 0
    latent_out: int = 0

    def __post_init__(self) -> None:
        self.channel_mults = tuple(self.channel_mults)
        self.attention_resolutions = tuple(self.attention_resolutions)
        factor = 2 ** (len(self.channel_mults) - 1)
        if self.height % factor or self.width % factor:
            raise UNetShapeError(
                f"{len(self.channel_mults)} U-Net levels halve the image {len(self.channel_mults) - 1} times, "
                f"so height and width must be multiples of {factor}; got {self.height}×{self.width} "
                "(use fewer channel_mults or pad the images)"
            )
        heights = [self.height >> level for level in range(len(self.channel_mults))]
        for res in self.attention_resolutions:
            if res not in heights:
                raise UNetShapeError(
                    f"attention resolution {res} never occurs: the U-Net's feature maps have heights "
                    f"{heights} (choose attention_resolutions among them)"
                )
        if self.base_channels % self.norm_groups:
            raise UNetShapeError(
                f"base_channels={self.base_channels} must be a multiple of norm_groups={self.norm_groups} "
                "(every GroupNorm splits its channels into that many groups)"
            )
        for level, mult in enumerate(self.channel_mults):
            attends = heights[level] in self.attention_resolutions or level == len(self.channel_mults) - 1
            if attends and (self.base_channels * mult) % self.n_heads:
                raise UNetShapeError(
                    f"{self.base_channels * mult} channels at level {level} do not split into "
                    f"n_heads={self.n_heads} attention heads (choose n_heads dividing it)"
                )

    @property
    def n_layers(self) -> int:
        """Residual blocks in all: ``res_blocks`` per level down, two in the middle, ``res_blocks + 1`` per level
        up (for reports that read a transformer's depth)."""
        levels = len(self.channel_mults)
        return levels * self.res_blocks + 2 + levels * (self.res_blocks + 1)

    @property
    def mlp_ratio(self) -> int:
        """ADM's time-embedding MLP widens 4× (``base_channels`` → 4·``base_channels``); reports read it as a
        transformer's MLP ratio."""
        return 4

    @property
    def seq_len(self) -> int:
        """Tokens per image, ``L = H·W·C``."""
        return self.height * self.width * self.channels


# Every preset attends at half the image height (ADM's 16 of CIFAR-10's 32; 4 of the 8×8 digits).
UNET_SIZES: dict[str, dict[str, object]] = {
    "xxs": {"hidden_size": 16, "base_channels": 24, "channel_mults": (1, 2), "res_blocks": 1, "n_heads": 2,
            "norm_groups": 8},
    "xs": {"hidden_size": 32, "base_channels": 40, "channel_mults": (1, 2, 2), "res_blocks": 2, "n_heads": 4,
           "norm_groups": 8},
    "cifar": {"hidden_size": 64, "base_channels": 128, "channel_mults": (1, 2, 2, 2), "res_blocks": 2,
              "n_heads": 4, "norm_groups": 32, "dropout": 0.1},
}  # fmt: skip


def unet_config(size: str, vocab_size: int, image_shape: tuple[int, ...], **overrides: object) -> UNetConfig:
    """A named U-Net size for images of ``image_shape`` = ``(H, W, C)``, with any field overridden.

    - ``xxs`` (≈0.36M parameters on 8×8×1): for tests.
    - ``xs`` (≈2.3M on 8×8×1): CPU runs on the 8×8 digits.
    - ``cifar`` (≈33M on 32×32×3): the CIFAR-10 U-Net of DDPM (Ho et al. 2020, App. B: 128 base channels,
      multipliers (1, 2, 2, 2), 2 residual blocks per level, attention at 16×16, dropout 0.1) with ADM's
      improvements (AdaGN time injection, 4 attention heads, Dhariwal & Nichol 2021 §3), the family of the
      MDM-Prime network CADD §5.2 uses. Meant for a GPU.
    """
    if size not in UNET_SIZES:
        raise UNetShapeError(f"U-Net size {size!r} is not known (choose one of: {', '.join(UNET_SIZES)})")
    if len(image_shape) != 3:
        raise UNetShapeError(f"image_shape must be (height, width, channels), got {tuple(image_shape)}")
    h, w, c = (int(v) for v in image_shape)
    fields: dict[str, object] = {**UNET_SIZES[size], "attention_resolutions": (h // 2,), **overrides}
    return UNetConfig(vocab_size=vocab_size, height=h, width=w, channels=c, **fields)  # type: ignore[arg-type]


def zero(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters (ADM's ``zero_module``): a residual branch ending in it starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """ADM residual block: GN → SiLU → conv, GN with the time scale-shift (AdaGN) → SiLU → dropout → zero conv.

    ``emb_dim`` ``None``: no time input (the second GroupNorm keeps its own affine scale and shift).
    """

    def __init__(self, in_ch: int, out_ch: int, emb_dim: int | None, groups: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * out_ch) if emb_dim is not None else None
        self.norm2 = nn.GroupNorm(groups, out_ch)
        self.drop = nn.Dropout(dropout)
        self.conv2 = zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        # ADM's 1×1 conv when the width changes (the up path's concatenated skips, a new level)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: Tensor, emb: Tensor | None) -> Tensor:
        """``x`` ``[B, in_ch, h, w]``, ``emb`` ``[B, emb_dim]`` (or ``None``) → ``[B, out_ch, h, w]``."""
        h = self.norm2(self.conv1(F.silu(self.norm1(x))))
        if self.emb is not None:
            assert emb is not None, "a time-conditioned block needs the time embedding"
            scale, shift = self.emb(F.silu(emb))[:, :, None, None].chunk(2, dim=1)
            h = h * (1.0 + scale) + shift  # AdaGN, ADM §3
        return self.skip(x) + self.conv2(self.drop(F.silu(h)))


class AttentionBlock(nn.Module):
    """Multi-head self-attention over the ``h·w`` positions of a feature map, added through a zero projection."""

    def __init__(self, ch: int, n_heads: int, groups: int) -> None:
        super().__init__()
        self.n_heads = n_heads
        self.norm = nn.GroupNorm(groups, ch)
        self.qkv = nn.Linear(ch, 3 * ch)
        self.out = zero(nn.Linear(ch, ch))

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        b, c, hh, ww = x.shape
        seq = self.norm(x).flatten(2).transpose(1, 2)  # [B, h·w, c]
        q, k, v = self.qkv(seq).view(b, hh * ww, 3, self.n_heads, c // self.n_heads).permute(2, 0, 3, 1, 4)
        attn = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, hh * ww, c)
        return x + self.out(attn).transpose(1, 2).reshape(b, c, hh, ww)


class Downsample(nn.Module):
    """Halve the resolution with a stride-2 3×3 conv (ADM's ``conv_resample``)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Double the resolution: nearest-neighbour, then a 3×3 conv (ADM)."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Stage(nn.Sequential):
    """Blocks applied in order, each given the time embedding (ADM's ``TimestepEmbedSequential``)."""

    def forward(self, x: Tensor, emb: Tensor | None = None) -> Tensor:
        for block in self:
            x = block(x, emb)
        return x


def tokens_to_image(h: Tensor, height: int, width: int) -> Tensor:
    """Channels-last token embeddings ``[B, H·W·C, D]`` → pixel features ``[B, C·D, H, W]``."""
    return h.reshape(h.shape[0], height, width, -1).permute(0, 3, 1, 2)


def image_to_tokens(x: Tensor, hidden_size: int) -> Tensor:
    """Inverse of :func:`tokens_to_image`: ``[B, C·D, H, W]`` → ``[B, H·W·C, D]``."""
    return x.permute(0, 2, 3, 1).reshape(x.shape[0], -1, hidden_size)


class LatentStream(nn.Module):
    """LADD's latent on a U-Net, conditioned the way ADM conditions on a class: an MLP of the L′ latent vectors
    (flattened; no normalization, so the latent's norm reaches the network) and the latent time's embedding join
    the time embedding that every residual block reads (AdaGN). The latent head reads the bottleneck, pooled
    over space, together with that embedding."""

    def __init__(self, cfg: UNetConfig, emb_dim: int, bottleneck: int) -> None:
        super().__init__()
        self.shape = (cfg.latent_len, cfg.latent_out)
        width = cfg.latent_len * cfg.latent_in
        self.embed = nn.Sequential(nn.Linear(width, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        self.time_embed = TimestepEmbedding(emb_dim, freq_dim=cfg.base_channels)
        self.norm = nn.GroupNorm(cfg.norm_groups, bottleneck)
        out = cfg.latent_len * cfg.latent_out
        self.head = nn.Sequential(nn.Linear(bottleneck + emb_dim, emb_dim), nn.SiLU(), zero(nn.Linear(emb_dim, out)))

    def condition(self, latent: Tensor, latent_t: Tensor) -> Tensor:
        """The latent ``[B, L′, latent_in]`` at time ``latent_t`` ``[B]`` → ``[B, emb_dim]``."""
        return self.embed(latent.flatten(1)) + self.time_embed(latent_t)

    def readout(self, bottleneck: Tensor, emb: Tensor) -> Tensor:
        """The bottleneck ``[B, ch, h, w]`` and the embedding → the latent head ``[B, L′, latent_out]``."""
        pooled = F.silu(self.norm(bottleneck)).mean(dim=(2, 3))
        return self.head(torch.cat([pooled, emb], dim=-1)).reshape(emb.shape[0], *self.shape)


class UNet(nn.Module):
    r"""ADM U-Net mapping noisy pixel tokens (or input embeddings) ``[B, H·W·C]`` to logits over all states; with
    ``latent_len > 0`` also LADD's latent stream (:class:`LatentStream`) and its head."""

    def __init__(self, cfg: UNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d, base, groups = cfg.hidden_size, cfg.base_channels, cfg.norm_groups
        # ADM: sinusoidal features of width base_channels → MLP to 4·base_channels; absent without time input
        # (a latent stream always has one: it reads the embedding of t = 0 without time conditioning, as the MM-DiT)
        emb_dim = cfg.mlp_ratio * base if cfg.time_conditioning or cfg.latent_len else None
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.time_embed = TimestepEmbedding(emb_dim, freq_dim=base) if emb_dim is not None else None
        self.conv_in = nn.Conv2d(cfg.channels * d, base, 3, padding=1)

        def res(in_ch: int, out_ch: int) -> ResBlock:
            return ResBlock(in_ch, out_ch, emb_dim, groups, cfg.dropout)

        # Way down: each stage (residual block [+ attention], or a downsample) leaves one skip for the way up.
        self.down = nn.ModuleList()
        skips, ch, height = [base], base, cfg.height
        for level, mult in enumerate(cfg.channel_mults):
            for _ in range(cfg.res_blocks):
                stage = Stage(res(ch, base * mult))
                ch = base * mult
                if height in cfg.attention_resolutions:
                    stage.append(AttentionBlock(ch, cfg.n_heads, groups))
                self.down.append(stage)
                skips.append(ch)
            if level < len(cfg.channel_mults) - 1:
                self.down.append(Stage(Downsample(ch)))
                skips.append(ch)
                height //= 2
        self.middle = Stage(res(ch, ch), AttentionBlock(ch, cfg.n_heads, groups), res(ch, ch))
        self.latent = LatentStream(cfg, emb_dim, ch) if cfg.latent_len and emb_dim is not None else None
        # Way up: res_blocks + 1 blocks per level, each reading one skip; an upsample closes every level but the top.
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(cfg.channel_mults))):
            for i in range(cfg.res_blocks + 1):
                stage = Stage(res(ch + skips.pop(), base * mult))
                ch = base * mult
                if height in cfg.attention_resolutions:
                    stage.append(AttentionBlock(ch, cfg.n_heads, groups))
                if level > 0 and i == cfg.res_blocks:
                    stage.append(Upsample(ch))
                    height *= 2
                self.up.append(stage)
        self.out = nn.Sequential(
            nn.GroupNorm(groups, ch), nn.SiLU(), zero(nn.Conv2d(ch, cfg.channels * d, 3, padding=1))
        )
        self.final_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.vocab_size)

    @property
    def time_conditioned(self) -> bool:
        return self.cfg.time_conditioning

    def embed_tokens(self, x: Tensor) -> Tensor:
        """The token embedding table applied to ids ``[B, L]`` → ``[B, L, D]``."""
        return self.embed(x)

    def embedding_weight(self) -> Tensor:
        """The token embedding table ``[vocab_size, D]`` (CADD's :math:`w_\theta`)."""
        return self.embed.weight

    def transformer_shape(self, seq_len: int) -> None:
        """Eq 77 counts a transformer, not this network: :mod:`augdiff.flops` reports no analytic figure."""
        return None

    def unet(self, x: Tensor, emb: Tensor | None) -> Tensor:
        """The ADM U-Net on pixel features ``[B, C·D, H, W]`` → ``[B, C·D, H, W]`` (zero when fresh)."""
        return self._unet(x, emb)[0]

    def _unet(self, x: Tensor, emb: Tensor | None) -> tuple[Tensor, Tensor]:
        """:meth:`unet`'s output and the middle block's (the bottleneck the latent head reads)."""
        h = self.conv_in(x)
        skips = [h]
        for stage in self.down:
            h = stage(h, emb)
            skips.append(h)
        h = middle = self.middle(h, emb)
        for stage in self.up:
            h = stage(torch.cat([h, skips.pop()], dim=1), emb)  # ADM: each skip joins along channels
        return self.out(h), middle

    def forward(
        self,
        x_t: Tensor | None,
        t: Tensor,
        input_embeds: Tensor | None = None,
        latent: Tensor | None = None,
        latent_t: Tensor | None = None,
    ) -> NetworkOutput:
        """Logits ``[B, L, vocab_size]`` for pixel tokens ``x_t`` ``[B, L]`` (``L = H·W·C``) at times ``t`` ``[B]``.

        ``input_embeds`` ``[B, L, D]`` replaces the token embedding (CADD fuses its latent into it). Without time
        conditioning ``t`` is ignored (MDLM's default: the mask carries t). With a latent stream, ``latent``
        ``[B, L′, latent_in]`` at ``latent_t`` ``[B]`` is required and the output carries the latent head.
        """
        cfg = self.cfg
        if input_embeds is None:
            assert x_t is not None, "give tokens x_t or input_embeds"
            e = self.embed_tokens(x_t)
        else:
            e = input_embeds
        if e.dim() != 3 or e.shape[1] != cfg.seq_len or e.shape[2] != cfg.hidden_size:
            raise UNetShapeError(
                f"the U-Net reads {cfg.height}×{cfg.width}×{cfg.channels} images, i.e. "
                f"[batch, {cfg.seq_len}, {cfg.hidden_size}] embeddings; got {list(e.shape)} "
                "(give sequences of height·width·channels tokens, or build the UNetConfig for this image shape)"
            )
        b = e.shape[0]
        emb = None
        if self.time_embed is not None:
            emb = self.time_embed(t.reshape(b) if cfg.time_conditioning else torch.zeros(b, device=e.device))
        if self.latent is not None:
            assert emb is not None and latent is not None and latent_t is not None, "the latent stream needs y_t, t_y"
            emb = emb + self.latent.condition(latent.to(e.dtype), latent_t.reshape(b))
        out, bottleneck = self._unet(tokens_to_image(e, cfg.height, cfg.width), emb)
        u = image_to_tokens(out, cfg.hidden_size)
        head = self.latent.readout(bottleneck, emb) if self.latent is not None and emb is not None else None
        # The token-space skip hands each position its own (possibly latent-fused) embedding from step one.
        return NetworkOutput(self.head(self.final_norm(e + u)), head)
