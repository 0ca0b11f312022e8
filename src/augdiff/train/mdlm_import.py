"""MDLM's released checkpoints (e.g. ``kuleshov-group/mdlm-owt``) as augdiff model folders.

MDLM's DiT (GitHub kuleshov-group/mdlm, ``models/dit.py``) is augdiff's DiT with scaled LayerNorms: the same
adaLN-zero blocks (one bias-free qkv projection, bias-free output projection, a GELU-tanh MLP with biases, six
modulations in the order shift/scale/gate ×2), half-split rotary embeddings, a 256-frequency timestep MLP and a
final adaLN layer. With ``model.norm_affine=true`` the weights map one to one (:func:`mdlm_to_augdiff`); the mask
is the last of its 50,258 ids, as augdiff's is. Its vocabulary is GPT-2's, whose tokenizer the folder carries.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from torch import Tensor

from augdiff.errors import AugdiffError

__all__ = ["mdlm_to_augdiff", "mdlm_config", "import_mdlm"]

_RULES = (
    (r"^vocab_embed\.embedding$", "network.embed.weight"),
    (r"^sigma_map\.mlp\.(0|2)\.(weight|bias)$", r"network.time_embed.mlp.\1.\2"),
    (r"^blocks\.(\d+)\.norm(1|2)\.weight$", r"network.blocks.\1.norm\2.weight"),
    (r"^blocks\.(\d+)\.attn_qkv\.weight$", r"network.blocks.\1.qkv.weight"),
    (r"^blocks\.(\d+)\.attn_out\.weight$", r"network.blocks.\1.attn_out.weight"),
    (r"^blocks\.(\d+)\.mlp\.(0|2)\.(weight|bias)$", r"network.blocks.\1.mlp.\2.\3"),
    (r"^blocks\.(\d+)\.adaLN_modulation\.(weight|bias)$", r"network.blocks.\1.adaln.\2"),
    (r"^output_layer\.norm_final\.weight$", "network.final_norm.weight"),
    (r"^output_layer\.linear\.(weight|bias)$", r"network.head.\1"),
    (r"^output_layer\.adaLN_modulation\.(weight|bias)$", r"network.final_adaln.\1"),
)


def mdlm_to_augdiff(state: dict[str, Tensor]) -> dict[str, Tensor]:
    """MDLM DiT weight names → augdiff ``DiffusionModel`` names (a ``backbone.`` prefix, as in its hub model, is
    dropped); an unknown name is an error, so nothing is silently left out."""
    out = {}
    for key, value in state.items():
        name = key.removeprefix("backbone.")
        for pattern, target in _RULES:
            if re.match(pattern, name):
                out[re.sub(pattern, target, name)] = value
                break
        else:
            raise AugdiffError(f"{key}: not a weight of MDLM's DiT (is this an MDLM checkpoint?)")
    return out


def mdlm_config(hf_config: dict[str, Any]) -> dict[str, Any]:
    """An augdiff config tree from MDLM's hub ``config.json`` (hidden_dim, n_blocks, n_heads, cond_dim,
    model_length, vocab_size, time_conditioning)."""
    try:
        return {
            "method": "mdlm",
            "model_size": "small",
            "seq_len": int(hf_config["model_length"]),
            "model": {
                "hidden_size": int(hf_config["hidden_dim"]),
                "n_layers": int(hf_config["n_blocks"]),
                "n_heads": int(hf_config["n_heads"]),
                "time_conditioning": bool(hf_config.get("time_conditioning", False)),
                "norm_affine": True,
            },
        }
    except (KeyError, TypeError, ValueError) as exc:
        raise AugdiffError(f"MDLM config.json lacks {exc} (hidden_dim, n_blocks, n_heads, model_length)") from None


def import_mdlm(source: str | Path, folder: str | Path, tokenizer: str | Path) -> Path:
    """Write MDLM's checkpoint folder ``source`` (``config.json`` + ``model.safetensors``) as an augdiff model
    folder, with the GPT-2 ``tokenizer`` (a tokenizer.json or directory) in its data description."""
    from safetensors.torch import load_file

    from augdiff.config import build_config, config_to_dict
    from augdiff.data.tokenizer import load_tokenizer
    from augdiff.methods import build_model
    from augdiff.train.checkpoint import load_weights
    from augdiff.train.pretrained import write_pretrained

    source = Path(source)
    if not (source / "config.json").is_file() or not (source / "model.safetensors").is_file():
        raise AugdiffError(f"{source}: expected MDLM's config.json and model.safetensors (download the hub repo)")
    hf_config = json.loads((source / "config.json").read_text())
    cfg = build_config(mdlm_config(hf_config))
    vocab = int(hf_config.get("vocab_size", 50258)) - 1  # the last id is the mask, as in augdiff
    state = mdlm_to_augdiff(load_file(str(source / "model.safetensors")))
    model = build_model(cfg, vocab)
    load_weights(model, state, str(source), "use an MDLM checkpoint of the sizes its config.json names")
    tok = load_tokenizer(tokenizer)
    data = {"spec": "hf:openwebtext", "vocab_size": vocab, "seq_len": cfg.seq_len, "packing": "wrap", **tok.describe()}
    return write_pretrained(folder, {"config": config_to_dict(cfg), "data": data}, model.state_dict(), step=0)
