"""What the model and the latent channels need from a token network (DiT, MM-DiT, U-Net, an ``hf:`` backbone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from torch import Tensor

__all__ = ["NetworkOutput", "TransformerShape", "NetworkConfig", "TokenNetwork"]


@dataclass
class NetworkOutput:
    """One forward pass of a token network."""

    #: unnormalized scores ``[B, L, V + 1]`` over the token states (the mask last)
    logits: Tensor
    #: the latent head ``[B, L′, latent_out]`` of a two-stream network (LADD's MM-DiT, a U-Net with a latent
    #: stream); ``None`` otherwise
    latent: Tensor | None = None


@dataclass(frozen=True)
class TransformerShape:
    """What LADD's Eq 77 (:func:`augdiff.flops.transformer_flops`) reads of a transformer."""

    #: positions one attention spans (an MM-DiT's tokens and latents together)
    length: int
    width: int
    layers: int
    mlp_ratio: int


class NetworkConfig(Protocol):
    """What every network's ``cfg`` has."""

    #: token states, the mask included (an AR network's: the data tokens and its start token)
    vocab_size: int
    #: the token embedding's width D, which the vocabulary head reads
    hidden_size: int


class TokenNetwork(Protocol):
    """A denoiser over ``vocab_size + 1`` token states with an embedding table the channels can read."""

    cfg: NetworkConfig

    @property
    def time_conditioned(self) -> bool:
        """Whether the output depends on t (otherwise a sampler may reuse p(x_0 | x_t) while x_t is unchanged)."""
        ...

    def embed_tokens(self, x: Tensor) -> Tensor:
        """Ids ``[B, L]`` → embeddings ``[B, L, D]``."""
        ...

    def embedding_weight(self) -> Tensor:
        """The embedding table ``[V + 1, D]`` (mask row last)."""
        ...

    def transformer_shape(self, seq_len: int) -> TransformerShape | None:
        """Eq 77's figures for inputs of ``seq_len`` tokens; ``None`` when Eq 77 does not describe the network (a
        U-Net, a wrapped model whose blocks differ from the DiT's)."""
        ...

    def __call__(
        self, x_t: Tensor | None, t: Tensor, input_embeds: Tensor | None = None, **streams: Any
    ) -> NetworkOutput:
        """The forward pass on tokens ``x_t`` ``[B, L]`` at times ``t`` ``[B]``; ``input_embeds`` ``[B, L, D]``
        replaces their embedding; ``streams``: a two-stream network's latent input (``latent``, ``latent_t``)."""
        ...
