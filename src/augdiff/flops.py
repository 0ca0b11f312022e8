r"""FLOPs of one sampling step: counted by ``torch.utils.flop_counter`` and analytic (LADD App. E, Eq 77).

One fused multiply-add is 2 FLOPs. The analytic count follows Shariatian et al. 2025 (LADD), App. E
"FLOPs accounting", Eq 77: per transformer block of width :math:`D` over :math:`L` positions,

* attention projections (Q, K, V, output): :math:`4 L D^2` multiply-adds → :math:`8 L D^2` FLOPs,
* attention mixing (:math:`QK^\top`, then times :math:`V`): :math:`2 L^2 D` multiply-adds → :math:`4 L^2 D` FLOPs,
* MLP of expansion :math:`r`: :math:`2 r L D^2` multiply-adds → :math:`4 r L D^2` FLOPs,

so :math:`F = N (8 L D^2 + 4 L^2 D + 4 r L D^2)`, i.e. :math:`N (24 L D^2 + 4 L^2 D)` at :math:`r = 4`.

The counter sees every matmul, so its figure also holds what Eq 77 leaves out on purpose: the vocabulary
projection (:math:`2 L D V` per row, the largest of them at a 50k vocabulary) and the per-sequence
time-embedding MLP and adaLN linears. It counts no LayerNorm, activation or softmax, as Eq 77.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

__all__ = [
    "transformer_flops",
    "ar_token_flops",
    "count_flops",
    "sampling_step_flops",
    "latent_step_flops",
    "ar_step_flops",
]

GIGA = 1e9


def transformer_flops(seq_len: int, hidden_size: int, n_layers: int, mlp_ratio: int = 4) -> float:
    r"""Forward FLOPs of the transformer backbone over one sequence (LADD App. E, Eq 77).

    .. math:: F = N \left(8 L D^2 + 4 L^2 D + 4 r L D^2\right) \quad (= N (24 L D^2 + 4 L^2 D) \text{ at } r = 4)

    with :math:`L` = ``seq_len``, :math:`D` = ``hidden_size``, :math:`N` = ``n_layers``, :math:`r` = ``mlp_ratio``
    and 2 FLOPs per multiply-add. It does not depend on the number of heads (they split :math:`D`), and ignores
    LayerNorm, activations, biases, time conditioning, the input embedding and the vocabulary projection.
    For an MM-DiT, :math:`L` is the length of the concatenated sequence (tokens + latents).

    Example:
        >>> transformer_flops(1024, 768, 12) == 12 * (24 * 1024 * 768**2 + 4 * 1024**2 * 768)
        True
    """
    L, D, N, r = seq_len, hidden_size, n_layers, mlp_ratio
    return float(N * (8 * L * D * D + 4 * L * L * D + 4 * r * L * D * D))


def ar_token_flops(seq_len: int, hidden_size: int, n_layers: int, mlp_ratio: int = 4) -> float:
    r"""Backbone FLOPs per generated token of KV-cached autoregressive decoding, averaged over ``seq_len`` tokens.

    Eq 77's terms for one new position: token i (0-based) costs :math:`(8 + 4r) D^2` per block in projections
    and MLP and :math:`4 (i+1) D` in attention mixing over the i+1 cached positions. The mean over
    i = 0 … L−1 is

    .. math:: F_{\text{token}} = N \left((8 + 4r) D^2 + 2 (L+1) D\right),

    so a whole sequence, :math:`L F_{\text{token}}`, costs one Eq 77 forward over L positions with about half
    its attention mixing (causal): an AR sample of L tokens ≈ one diffusion step.

    Example:
        >>> ar_token_flops(4, 8, 1, 4) == (24 * 8 * 8 + 2 * 5 * 8)
        True
    """
    L, D, N, r = seq_len, hidden_size, n_layers, mlp_ratio
    return float(N * ((8 + 4 * r) * D * D + 2 * (L + 1) * D))


def _sdpa_flops(query_shape: Any, key_shape: Any, value_shape: Any, *args: Any, **kwargs: Any) -> int:
    """QKᵀ then times V, 2 FLOPs per multiply-add: torch's own formula for the CUDA attention kernels."""
    b, h, l_q, d_qk = query_shape
    l_k, d_v = key_shape[-2], value_shape[-1]
    return 2 * b * h * l_q * l_k * (d_qk + d_v)


# The CPU kernel of F.scaled_dot_product_attention is missing from the counter's registry (torch 2.13 counts
# it as 0 FLOPs, while the CUDA flash/efficient/cuDNN kernels are counted): without this, Eq 77's attention
# mixing term would vanish from every measurement on CPU.
_CPU_ATTENTION = {torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _sdpa_flops}


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of ``fn()`` under ``torch.utils.flop_counter.FlopCounterMode``, without autograd.

    Matmuls and attention only (the counter's registry, plus the CPU attention kernel it lacks).
    """
    counter = FlopCounterMode(display=False, custom_mapping=_CPU_ATTENTION)
    with torch.no_grad(), counter:
        fn()
    return counter.get_total_flops()


def sampling_step_flops(model: Any, batch_size: int, seq_len: int, options: Any = None) -> dict[str, float]:
    r"""GFLOPs per sequence of one sampling step of a :class:`~augdiff.model.DiffusionModel` (in eval mode).

    Measured: the counter's total for one ``x0_log_probs`` call on an all-masked batch at :math:`t = 1`,
    divided by ``batch_size``; with K latent particles (CADD) it spans the K network rows of each sequence
    (``options``: the channel's sampling options, ``model.sampling_options(k=…)``).

    Analytic: Eq 77 × particles (:func:`transformer_flops`) of the network's ``transformer_shape(seq_len)``
    (an MM-DiT's attention spans its latents too); NaN for a network Eq 77 does not describe (a U-Net).

    Returns:
        ``measured_gflops``; ``analytic_gflops`` (Eq 77 × particles); ``analytic_backbone_gflops`` (Eq 77,
        one row); ``measured_head_gflops``: the vocabulary projection's share of the measured figure,
        :math:`2 L D V` per row over the ``seq_len`` token positions — the counter counts that linear
        exactly so — which Eq 77 leaves out.
    """
    network = model.network
    device = next(model.parameters()).device
    x_T = torch.full((batch_size, seq_len), model.mask_id, device=device)
    state = model.init_state(x_T, torch.Generator(device=device).manual_seed(0), options)
    t = torch.full((batch_size,), 1.0, device=device)
    measured = count_flops(lambda: model.x0_log_probs(x_T, t, state)) / batch_size

    particles = model.particles(options)
    shape = network.transformer_shape(seq_len)  # None: Eq 77 does not describe the network (a U-Net)
    backbone = math.nan
    if shape is not None:
        backbone = transformer_flops(shape.length, shape.width, shape.layers, shape.mlp_ratio)
    head = 2 * seq_len * network.cfg.hidden_size * network.cfg.vocab_size * particles
    return {
        "measured_gflops": measured / GIGA,
        "analytic_gflops": backbone * particles / GIGA,
        "analytic_backbone_gflops": backbone / GIGA,
        "measured_head_gflops": head / GIGA,
    }


def latent_step_flops(channel: Any, batch_size: int) -> dict[str, float]:
    r"""GFLOPs per sequence of one latent-only step of LADD's sequential inference (the latent denoiser).

    Analytic: Eq 77 over the L′ latent positions for a DiT latent denoiser; for an MLP, :math:`2\sum_\ell
    d_{in} d_{out}` of its linear layers (exact, as Eq 77 would count a dense layer); no vocabulary head.
    """
    prior = channel.prior
    device = next(prior.parameters()).device
    y = channel.terminal(batch_size, device, torch.Generator(device=device).manual_seed(0))
    t = torch.ones(batch_size, device=device)
    measured = count_flops(lambda: prior(channel.latent_input(y), t)) / batch_size
    if prior.kind == "dit":
        width = prior.inp.out_features
        analytic = transformer_flops(prior.latent_len, width, len(prior.blocks), 4)
    else:
        analytic = 2 * sum(m.in_features * m.out_features for m in prior.mlp if isinstance(m, torch.nn.Linear))
    return {
        "measured_gflops": measured / GIGA,
        "analytic_gflops": analytic / GIGA,
        "analytic_backbone_gflops": analytic / GIGA,
        "measured_head_gflops": 0.0,
    }


def ar_step_flops(model: Any, batch_size: int, seq_len: int) -> dict[str, float]:
    r"""GFLOPs per sequence of one step of an :class:`~augdiff.ar.ARModel`: one generated token, averaged over
    a KV-cached generation of ``seq_len`` tokens.

    Measured: the counter's total for ``model.generate(batch_size, seq_len)`` divided by ``batch_size ·
    seq_len``. Analytic: :func:`ar_token_flops`. The vocabulary head, :math:`2 D (V+1)` per token, is reported
    apart, as for the diffusion models.
    """
    shape = model.network.transformer_shape(seq_len)
    measured = count_flops(lambda: model.generate(batch_size, seq_len)) / (batch_size * seq_len)
    backbone = ar_token_flops(seq_len, shape.width, shape.layers, shape.mlp_ratio)
    cfg = model.network.cfg
    return {
        "measured_gflops": measured / GIGA,
        "analytic_gflops": backbone / GIGA,
        "analytic_backbone_gflops": backbone / GIGA,
        "measured_head_gflops": 2 * cfg.hidden_size * cfg.vocab_size / GIGA,
    }
