"""What the model and the latent channels need from a token network (DiT, MM-DiT, an ``hf:`` backbone)."""

from __future__ import annotations

from typing import Any, Protocol

from torch import Tensor

__all__ = ["TokenNetwork"]


class TokenNetwork(Protocol):
    """A denoiser over ``vocab_size + 1`` token states with an embedding table the channels can read."""

    #: whether LADD's Eq 77 (a transformer's FLOPs) describes the network (not a U-Net)
    is_transformer: bool

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

    def __call__(self, x_t: Tensor | None, t: Tensor, input_embeds: Tensor | None = None, **streams: Any) -> Any:
        """Logits ``[B, L, V + 1]`` (a two-stream network: logits and its latent head)."""
        ...
