r"""A local Hugging Face transformers model as the denoiser (``backbone: hf:PATH``).

CADD fine-tunes an existing masked diffusion LM with its own objective (CADD §5.3, App. C.1: DiffuCoder
initialization): the backbone is unchanged, and the latent :math:`z_t` is added to the token embeddings
:math:`w_\theta(x_t)` that the transformer reads as ``inputs_embeds``. :class:`HFBackbone` gives any such
model the interface of :class:`augdiff.nn.DiT`: ``forward(x_t, t, input_embeds=None)`` → logits over the
data tokens and the mask, ``embed_tokens``, ``embedding_weight``, ``cfg.hidden_size``, ``time_conditioned``.

**Attention is made bidirectional.** Decoder architectures (Qwen2, Llama, …) are loaded with
``config.is_causal = False`` (transformers then builds a bidirectional mask) and every attention module's
``is_causal`` flag cleared (so SDPA is never asked for its built-in causal mask).

**Token ids.** augdiff's data ids ``0 … V−1`` are the model's own token ids (tokenize the data with the
model's tokenizer, e.g. ``text.tokenizer=PATH``), and augdiff's mask id ``V`` stands for the model's mask
token ``m`` (``mask_token_id`` of the config, the generation config or the tokenizer in ``PATH``). The rows
of the model's vocabulary between ``V`` and ``m`` (reserved and padding rows) are left out of the output:

.. math::
    \mathrm{logits}_{augdiff} = [\,\mathrm{logits}_{0:V},\ \mathrm{logits}_{m}\,] \in \mathbb{R}^{V+1}.

**Models that ship their own code.** Masked diffusion LMs such as LLaDA, Dream or DiffuCoder bring their
modeling code in ``PATH`` (``auto_map`` in ``config.json``). Running it is an explicit opt-in:
``trust_remote_code=true`` (``--trust-remote-code``); without it such a model is refused with that fix. Their
masked-LM or causal-LM class is used when the ``auto_map`` names one, else the plain ``AutoModel`` class, which must
return ``.logits`` (checked with one forward of one token when the model is loaded).

A model without a mask token gets one new embedding row (``resize_token_embeddings``), which becomes ``m``;
the same happens again when a run is restored, so checkpoints fit. ``V`` must not exceed ``m``.

Example:
    >>> net = HFBackbone("/models/DiffuCoder-7B-Base", vocab_size=151665, trust_remote_code=True)
    >>> net(x_t, t).logits.shape  # [B, L, V + 1]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from augdiff.errors import AugdiffError
from augdiff.nn.protocol import NetworkOutput

__all__ = ["HF_PREFIX", "HFBackboneConfig", "HFBackbone", "hf_backbone_path"]

HF_PREFIX = "hf:"


def hf_backbone_path(backbone: str) -> str | None:
    """``hf:PATH`` → ``PATH``; ``dit`` → ``None``."""
    return backbone[len(HF_PREFIX) :] if backbone.startswith(HF_PREFIX) else None


@dataclass
class HFBackboneConfig:
    """Shape of a wrapped model: ``vocab_size`` counts augdiff's states (data tokens + mask)."""

    path: str
    vocab_size: int
    hidden_size: int
    mask_token_id: int


def _first_line(exc: BaseException) -> str:
    """The start of a transformers error, so augdiff's message stays one line."""
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _auto_map(path: str) -> dict[str, str]:
    """``auto_map`` of ``PATH/config.json``: the auto classes the model's own code provides (``{}``: none).

    Read before transformers sees the directory, so a refusal names augdiff's flag rather than transformers'
    argument, whatever the transformers version words it as."""
    try:
        raw = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # AutoConfig reports the missing or unreadable file
    auto_map = raw.get("auto_map") if isinstance(raw, dict) else None
    return auto_map if isinstance(auto_map, dict) else {}


def _require_logits(model: nn.Module, where: str) -> None:
    """``AutoModel`` gives whatever class the authors mapped there: a diffusion LM with its head (Dream) or a bare
    encoder. One forward of one token tells which, before any training starts."""
    width = model.get_input_embeddings().embedding_dim
    with torch.no_grad():
        out = model(inputs_embeds=torch.zeros(1, 1, width), use_cache=False)
    if not isinstance(getattr(out, "logits", None), Tensor):
        raise AugdiffError(
            f"{where}: the model's own AutoModel class returns no logits (no language-model head); give a model "
            "whose forward returns an output with .logits"
        )


def _load_model(path: str, trust_remote_code: bool = False) -> nn.Module:
    """The model with a language-model head: masked-LM classes first, then causal-LM ones, then (own code only)
    the plain ``AutoModel`` class. The model's own code runs only with ``trust_remote_code``."""
    from transformers import AutoConfig, AutoModel, AutoModelForCausalLM, AutoModelForMaskedLM

    where = f"backbone=hf:{path}"
    if not Path(path).is_dir():
        raise AugdiffError(
            f"{where}: not a local directory (give a directory with config.json and weights, as written by "
            "save_pretrained; hub names are not downloaded)"
        )
    auto_map = _auto_map(path)
    refusal = (
        f"{where}: the model ships its own code (auto_map in config.json), which augdiff runs only when told to: "
        "pass --trust-remote-code (trust_remote_code=true), only for code you trust"
    )
    if auto_map and not trust_remote_code:
        raise AugdiffError(refusal)
    options: dict[str, bool] = {"local_files_only": True, "trust_remote_code": trust_remote_code}
    try:
        config = AutoConfig.from_pretrained(path, **options)
    except ImportError as exc:
        raise AugdiffError(f"{where}: the model's own code does not import ({_first_line(exc)})") from None
    except (OSError, ValueError) as exc:
        if not trust_remote_code and ("custom code" in str(exc) or "trust_remote_code" in str(exc)):
            raise AugdiffError(refusal) from None
        raise AugdiffError(f"{where}: no readable config.json ({_first_line(exc)})") from None
    config.is_causal = False  # transformers ≥ 4.56 then builds bidirectional masks for decoder models
    autos = [AutoModelForMaskedLM, AutoModelForCausalLM]
    if trust_remote_code and "AutoModel" in auto_map:  # Dream maps AutoModel only
        autos.append(AutoModel)
    for auto in autos:
        try:
            model = auto.from_pretrained(path, config=config, dtype=torch.float32, **options)
        except ValueError:  # this auto class does not know the architecture
            continue
        except ImportError as exc:
            raise AugdiffError(f"{where}: the model's own code does not import ({_first_line(exc)})") from None
        except OSError as exc:
            raise AugdiffError(f"{where}: weights not readable ({_first_line(exc)})") from None
        if auto is AutoModel:
            _require_logits(model, where)
        return model
    own = " or in its own code" if auto_map else ""
    raise AugdiffError(f"{where}: {config.model_type} has no masked-LM or causal-LM head in transformers{own}")


def _mask_token_id(model: nn.Module, path: str, trust_remote_code: bool) -> int | None:
    for source in (model.config, getattr(model, "generation_config", None)):
        mask = getattr(source, "mask_token_id", None)
        if isinstance(mask, int):
            return mask
    try:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=trust_remote_code)
        mask = tokenizer.mask_token_id
    except (OSError, ValueError, TypeError, KeyError):
        return None
    return mask if isinstance(mask, int) else None


def _tied_names(model: nn.Module) -> dict[str, str]:
    """``{name: name of the same parameter first seen}`` for every parameter registered twice."""
    first: dict[int, str] = {}
    tied: dict[str, str] = {}
    for name, param in model.named_parameters(remove_duplicate=False):
        if id(param) in first:
            tied[f"model.{name}"] = f"model.{first[id(param)]}"
        else:
            first[id(param)] = name
    return tied


def _drop_tied(module: HFBackbone, state: dict[str, Tensor], prefix: str, local_metadata: dict) -> None:
    for name in module._tied:
        state.pop(prefix + name, None)


def _restore_tied(module: HFBackbone, state: dict[str, Tensor], prefix: str, *args: object) -> None:
    for name, source in module._tied.items():
        if prefix + name not in state and prefix + source in state:
            state[prefix + name] = state[prefix + source]


class HFBackbone(nn.Module):
    """A local transformers model (bidirectional, LM head) as augdiff's denoiser over ``vocab_size`` data tokens.

    Args:
        path: a local directory from ``save_pretrained`` (``config.json`` and weights; a tokenizer with a
            mask token optional).
        vocab_size: V, the data's vocabulary; ids ``0 … V−1`` are the model's ids, ``V`` is the mask.
        trust_remote_code: run the modeling code shipped in ``path`` (``auto_map``: LLaDA, Dream, DiffuCoder);
            off by default because that code runs with the user's rights.
    """

    def __init__(self, path: str | Path, vocab_size: int, *, trust_remote_code: bool = False) -> None:
        super().__init__()
        path = str(path)
        self.model = _load_model(path, trust_remote_code)
        for module in self.model.modules():
            if hasattr(module, "is_causal"):
                module.is_causal = False
        rows = self.model.get_input_embeddings().num_embeddings
        mask = _mask_token_id(self.model, path, trust_remote_code)
        if mask is None:  # no mask token: add one row at the end, the same on every rebuild
            self.model.resize_token_embeddings(rows + 1)
            mask = rows
            rows += 1
        if not vocab_size <= mask < rows:
            raise AugdiffError(
                f"backbone=hf:{path}: the data's vocabulary of {vocab_size} tokens reaches the model's mask "
                f"token {mask} (vocabulary of {rows}); tokenize the data with the model's tokenizer and keep "
                f"ids below {mask} (e.g. vocab_size={mask} for tokens: data)"
            )
        hidden = int(self.model.get_input_embeddings().embedding_dim)
        self.cfg = HFBackboneConfig(path=path, vocab_size=vocab_size + 1, hidden_size=hidden, mask_token_id=mask)
        # augdiff state → model row: data ids stay, the mask V goes to m.
        rows_of_states = torch.cat([torch.arange(vocab_size), torch.tensor([mask])])
        self.register_buffer("model_ids", rows_of_states, persistent=False)
        # Tied weights (an LM head sharing the embedding table) are saved once: safetensors refuses shared memory.
        self._tied = _tied_names(self.model)
        self.register_state_dict_post_hook(_drop_tied)
        self.register_load_state_dict_pre_hook(_restore_tied)

    @property
    def time_conditioned(self) -> bool:
        """Masked diffusion LMs are not told the time (MDLM); ``t`` is ignored."""
        return False

    def embed_tokens(self, x: Tensor) -> Tensor:
        """The model's token embeddings of augdiff ids ``[B, L]`` → ``[B, L, D]``."""
        return self.model.get_input_embeddings()(self.model_ids[x])

    def embedding_weight(self) -> Tensor:
        r"""The embedding rows of augdiff's states ``[V + 1, D]``, the mask last (CADD's :math:`w_\theta`)."""
        return self._states(self.model.get_input_embeddings().weight, dim=0)

    def transformer_shape(self, seq_len: int) -> None:
        """A wrapped model's blocks (grouped-query attention, gated MLPs) are not the DiT's that Eq 77 counts:
        :mod:`augdiff.flops` reports only the measured figure."""
        return None

    def forward(self, x_t: Tensor | None, t: Tensor, input_embeds: Tensor | None = None) -> NetworkOutput:
        """Logits ``[B, L, V + 1]`` for tokens ``x_t`` ``[B, L]``; ``input_embeds`` ``[B, L, D]`` replaces
        their embedding (CADD's fused latent). ``t`` is ignored."""
        h = self.embed_tokens(x_t) if input_embeds is None else input_embeds
        assert h.dim() == 3 and h.shape[-1] == self.cfg.hidden_size, f"input of shape {tuple(h.shape)}"
        logits = self.model(inputs_embeds=h, use_cache=False).logits
        return NetworkOutput(self._states(logits, dim=-1))

    def _states(self, rows: Tensor, dim: int) -> Tensor:
        """The entries of augdiff's states along ``dim``: a view when the mask row follows the data rows (no copy
        of a [B, L, vocabulary] tensor), else a gather."""
        v = self.cfg.vocab_size - 1
        if self.cfg.mask_token_id == v:
            return rows.narrow(dim, 0, v + 1)
        return rows.index_select(dim, self.model_ids)
