r"""The autoregressive (AR) reference: a causal transformer of matched size (``method: ar``).

MDLM (Sahoo et al. 2024), CADD and LADD compare masked diffusion with an autoregressive transformer of the
same size trained by next-token prediction; the AR model is also the offline teacher of the evaluation
(MAUVE features, generative perplexity). Here it is the DiT of the same ``model_size`` preset with causal
attention and no time conditioning, trained by the same :class:`~augdiff.train.Trainer` through the same
:meth:`ARModel.loss` contract as :class:`~augdiff.model.DiffusionModel`.

.. math::

    \log p_\theta(x) = \sum_{i=0}^{L-1} \log p_\theta(x_i \mid x_{<i})

**Start token.** The DiT has V+1 input embeddings (V data tokens and the mask id V of the diffusion models);
the AR model reads id V as its start (BOS) token. Teacher forcing feeds ``[V, x_0, …, x_{L−2}]`` and output
position i predicts ``x_i``. The network's (V+1)-th output logit (the BOS/mask state) is never a target: it
is dropped before the softmax, so every distribution is over the V data tokens.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from augdiff.flops import ar_step_flops
from augdiff.losses import LossOutput
from augdiff.nn.dit import DiT, KVCache
from augdiff.processes import adjust_log_probs, sample_categorical

__all__ = ["ARModel", "generate_ar"]


class ARModel(nn.Module):
    """Next-token prediction over ``vocab_size`` data tokens with a causal DiT; the start token is id V.

    Args:
        network: a :class:`~augdiff.nn.DiT` with ``causal=True``, no time conditioning and ``vocab_size + 1``
            states (the data tokens and the start token).
        vocab_size: number of data tokens V.

    Example:
        >>> net = DiT(DiTConfig(vocab_size=3, hidden_size=32, n_layers=2, n_heads=2, causal=True))
        >>> model = ARModel(net, vocab_size=2)
        >>> model.loss(torch.randint(0, 2, (8, 16)), torch.rand(8)).loss.backward()
        >>> model.generate(4, 16, temperature=0.9, top_p=0.95).shape
        torch.Size([4, 16])
    """

    def __init__(self, network: DiT, vocab_size: int, pad_id: int | None = None) -> None:
        super().__init__()
        cfg = network.cfg
        assert cfg.causal, "ARModel needs a causal network (DiTConfig(causal=True))"
        assert not cfg.time_conditioning, "ARModel has no diffusion time: use DiTConfig(time_conditioning=False)"
        assert cfg.vocab_size == vocab_size + 1, (
            f"the network has {cfg.vocab_size} states; V={vocab_size} tokens and the start token need {vocab_size + 1}"
        )
        self.network = network
        self.vocab_size = vocab_size
        #: padding of sentence rows: not scored (as the diffusion models' loss), still read as context
        self.pad_id = pad_id

    #: the chain rule gives log p(x) exactly (:class:`augdiff.protocol.SequenceModel`)
    exact_likelihood: ClassVar[bool] = True
    takes_steps: ClassVar[bool] = False
    nll_kind: ClassVar[str] = "exact (chain rule)"
    #: no bound is needed: :meth:`nll` is exact
    has_bound: ClassVar[bool] = False
    #: there is no masked token term (a conditional log-likelihood is read off the chain rule instead)
    token_term_is_bound: ClassVar[bool] = False

    @property
    def bos_id(self) -> int:
        """The start token: id V, the diffusion models' mask id (the extra row of the embedding table)."""
        return self.vocab_size

    def _device(self) -> torch.device:
        return next(self.parameters()).device

    def _with_bos(self, x: Tensor) -> Tensor:
        """``[B, n]`` → ``[B, 1 + n]``: the start token, then ``x``."""
        bos = torch.full((x.shape[0], 1), self.bos_id, dtype=x.dtype, device=x.device)
        return torch.cat([bos, x], dim=1)

    def _log_softmax(self, logits: Tensor) -> Tensor:
        """float32 log-probabilities over the V data tokens (the start token's logit dropped)."""
        return F.log_softmax(logits[..., : self.vocab_size].float(), dim=-1)

    def _run(self, inputs: Tensor, cache: KVCache | None = None) -> Tensor:
        t = torch.zeros(inputs.shape[0], device=inputs.device)  # ignored: no time conditioning
        return self.network(inputs, t, cache=cache).logits

    # -- likelihood -----------------------------------------------------------------------------------------
    def log_probs(self, x: Tensor) -> Tensor:
        r"""Teacher-forced :math:`\log p_\theta(x_i \mid x_{<i})` ``[B, L, V]`` (float32) for tokens ``x`` ``[B, L]``.

        Position i reads ``[V, x_0, …, x_{i−1}]`` (causal attention): position 0 is the unconditional
        distribution of the first token.
        """
        assert x.dim() == 2, f"x must be [batch, length], got shape {tuple(x.shape)}"
        return self._log_softmax(self._run(self._with_bos(x[:, :-1])))

    def token_nll(self, x: Tensor) -> Tensor:
        r"""Per-token :math:`-\log p_\theta(x_i \mid x_{<i})` ``[B, L]`` in nats."""
        return -self.log_probs(x).gather(-1, x.unsqueeze(-1)).squeeze(-1)

    def _counted(self, x: Tensor) -> Tensor:
        return torch.ones_like(x, dtype=torch.bool) if self.pad_id is None else x != self.pad_id

    def nll(self, x: Tensor) -> Tensor:
        r"""Exact NLL per token of each sequence ``[B]`` in nats: :math:`-\frac1L \log p_\theta(x)`.

        No time samples and no bound: the chain rule is exact, unlike the diffusion models' ELBO. Padding
        (``pad_id``) is left out of the sum and of L.
        """
        counted = self._counted(x)
        return (self.token_nll(x) * counted).sum(-1) / counted.sum(-1).clamp_min(1)

    def loss(
        self, x0: Tensor, t: Tensor, generator: torch.Generator | None = None, *, fixed: Tensor | None = None
    ) -> LossOutput:
        """Next-token cross-entropy on ``x0`` ``[B, L]``, with :meth:`DiffusionModel.loss`'s signature.

        ``t`` and ``generator`` (the trainer's diffusion times and masking randomness) are ignored. ``loss``
        and ``nll`` are the same number, the exact NLL per token; ``nll_per_sequence`` is its value per
        sequence ``[B]``, detached.
        """
        counted = self._counted(x0) if fixed is None else self._counted(x0) & ~fixed  # a prompt: context only
        terms = (self.token_nll(x0) * counted).sum(-1)
        per_seq = terms / counted.sum(-1).clamp_min(1)
        loss = terms.sum() / counted.sum().clamp_min(1) if fixed is None else per_seq.mean()  # SFT: per response
        per_seq = per_seq.detach()
        return LossOutput(loss=loss, nll=per_seq.mean(), nll_per_sequence=per_seq)

    def settle(self) -> dict[str, dict[str, Any]]:
        """Nothing to measure when training starts (the protocol's :meth:`DiffusionModel.settle`)."""
        return {}

    def sequence_nll(
        self, x0: Tensor, times: Tensor | None = None, generator: torch.Generator | None = None, options: Any = None
    ) -> Tensor:
        """:meth:`nll` in float64 ``[B]``, with :meth:`DiffusionModel.sequence_nll`'s signature (no times)."""
        return self.nll(x0).double()

    def step_flops(self, batch_size: int, seq_len: int, options: Any = None) -> dict[str, dict[str, float]]:
        """GFLOPs per sequence of one step: one generated token, averaged over a KV-cached sequence."""
        return {"ar token": ar_step_flops(self, batch_size, seq_len)}

    def step_calls(self, seq_len: int, steps: int | None = None, options: Any = None) -> dict[str, int]:
        """A sample is ``seq_len`` steps, one per token (``steps`` does not apply)."""
        return {"ar token": seq_len}

    def sample(self, num: int, seq_len: int, steps: int | None = None, **options: Any) -> Tensor:
        """``num`` sequences ``[num, seq_len]`` token by token (:func:`generate_ar`; ``steps`` does not apply): the
        sampling side of the protocol AR and diffusion models share (``DiffusionModel.sample``)."""
        return generate_ar(self, num, seq_len, **options)

    def hidden_states(self, x: Tensor) -> Tensor:
        """The final normalized hidden states ``[B, L, D]`` before the output head (features, e.g. for MAUVE).

        Row i is the state after reading ``[V, x_0, …, x_i]``, i.e. the one that predicts ``x_{i+1}``: the
        last row has read the whole sequence. (The forward runs over L+1 positions, one more than in
        training; with rotary, i.e. relative, positions that adds one unseen distance.)
        """
        assert x.dim() == 2, f"x must be [batch, length], got shape {tuple(x.shape)}"
        inputs = self._with_bos(x)
        t = torch.zeros(x.shape[0], device=x.device)
        return self.network.features(inputs, t)[:, 1:]

    # -- sampling -------------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        batch_size: int,
        seq_len: int,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        prefix: Tensor | None = None,
        cache: bool = True,
        dtype: torch.dtype = torch.float64,
    ) -> Tensor:
        """Draw ``batch_size`` sequences ``[B, seq_len]`` token by token (ancestral sampling).

        Each token is drawn from :math:`p_\\theta(x_i \\mid x_{<i})` after temperature and top-p (nucleus)
        filtering, in ``dtype`` (float64, see :func:`~augdiff.processes.sample_categorical`). A tiny ``top_p``
        keeps only the most likely token: greedy decoding.

        Args:
            generator: randomness of the draws (on the model's device).
            prefix: token ids ``[P]`` or ``[B or 1, P]`` that every sample starts with (P ≤ ``seq_len``).
            cache: reuse the keys and values of earlier positions (:class:`~augdiff.nn.KVCache`): one
                one-token forward per step. ``False`` re-runs the whole prefix every step (the reference).
        """
        device = self._device()
        x = torch.zeros(batch_size, seq_len, dtype=torch.long, device=device)
        start = 0
        if prefix is not None:
            prefix = prefix.to(device=device, dtype=torch.long)
            prefix = prefix.unsqueeze(0) if prefix.dim() == 1 else prefix
            if prefix.dim() != 2 or prefix.shape[0] not in (1, batch_size) or prefix.shape[1] > seq_len:
                raise ValueError(f"prefix of shape {tuple(prefix.shape)} does not fit [{batch_size}, {seq_len}]")
            if prefix.numel() and not bool(((prefix >= 0) & (prefix < self.vocab_size)).all()):
                raise ValueError(f"prefix ids must lie in [0, {self.vocab_size})")
            start = prefix.shape[1]
            x[:, :start] = prefix
        was_training = self.training
        self.eval()  # dropout off: the cached and the re-run forward must agree
        try:
            kv = KVCache(len(self.network.blocks), seq_len) if cache else None
            inputs = self._with_bos(x[:, :start])
            for i in range(start, seq_len):
                if kv is None:
                    inputs = self._with_bos(x[:, :i])
                log_p = self._log_softmax(self._run(inputs, kv)[:, -1])
                x[:, i] = sample_categorical(adjust_log_probs(log_p, temperature, top_p, dtype), generator, dtype)
                inputs = x[:, i : i + 1]  # with the cache, the next forward reads only the new token
        finally:
            self.train(was_training)
        return x


def generate_ar(
    model: ARModel,
    num: int,
    seq_len: int,
    *,
    batch_size: int = 256,
    temperature: float = 1.0,
    top_p: float = 1.0,
    prefix: Tensor | None = None,
    seed: int = 0,
    cache: bool = True,
    progress: bool = False,
) -> Tensor:
    """``num`` samples ``[num, seq_len]`` (on the CPU) drawn in batches: the AR counterpart of
    :func:`augdiff.sampling.generate`.

    Args:
        prefix: token ids ``[P]`` every sample starts with.
        seed: seeds one generator (on the model's device) for the whole draw (same seed, same samples).
    """
    gen = torch.Generator(device=next(model.parameters()).device)
    gen.manual_seed(seed)
    chunks = []
    with tqdm(total=num, desc="sampling (autoregressive)", unit="seq", disable=not progress) as bar:
        for begin in range(0, num, batch_size):
            n = min(batch_size, num - begin)
            out = model.generate(
                n, seq_len, temperature=temperature, top_p=top_p, generator=gen, prefix=prefix, cache=cache
            )
            chunks.append(out.cpu())
            bar.update(n)
    return torch.cat(chunks)
