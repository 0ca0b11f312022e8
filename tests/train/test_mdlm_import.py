"""MDLM's checkpoint layout → augdiff (offline, with a state dict of MDLM's key names and shapes at a tiny size)."""

import json

import pytest
import torch
from safetensors.torch import save_file

from augdiff.cli.main import main
from augdiff.config import build_config
from augdiff.errors import AugdiffError
from augdiff.methods import build_model
from augdiff.runs import load_run
from augdiff.train.mdlm_import import mdlm_config, mdlm_to_augdiff

HF = {"vocab_size": 11, "model_length": 16, "hidden_dim": 32, "cond_dim": 128, "n_blocks": 2, "n_heads": 2}


def mdlm_state(d=32, layers=2, vocab=11, cond=128, freq=256):
    """Random weights under MDLM's names (models/dit.py: DIT, DDiTBlock, DDitFinalLayer), as its hub model
    stores them (``backbone.`` prefix)."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.1  # noqa: E731
    state = {
        "vocab_embed.embedding": r(vocab, d),
        "sigma_map.mlp.0.weight": r(cond, freq),
        "sigma_map.mlp.0.bias": r(cond),
        "sigma_map.mlp.2.weight": r(cond, cond),
        "sigma_map.mlp.2.bias": r(cond),
        "output_layer.norm_final.weight": 1 + r(d),
        "output_layer.linear.weight": r(vocab, d),
        "output_layer.linear.bias": r(vocab),
        "output_layer.adaLN_modulation.weight": r(2 * d, cond),
        "output_layer.adaLN_modulation.bias": r(2 * d),
    }
    for i in range(layers):
        state |= {
            f"blocks.{i}.norm1.weight": 1 + r(d),
            f"blocks.{i}.attn_qkv.weight": r(3 * d, d),
            f"blocks.{i}.attn_out.weight": r(d, d),
            f"blocks.{i}.norm2.weight": 1 + r(d),
            f"blocks.{i}.mlp.0.weight": r(4 * d, d),
            f"blocks.{i}.mlp.0.bias": r(4 * d),
            f"blocks.{i}.mlp.2.weight": r(d, 4 * d),
            f"blocks.{i}.mlp.2.bias": r(d),
            f"blocks.{i}.adaLN_modulation.weight": r(6 * d, cond),
            f"blocks.{i}.adaLN_modulation.bias": r(6 * d),
        }
    return {f"backbone.{k}": v for k, v in state.items()}


def test_every_mdlm_weight_lands_on_one_augdiff_weight():
    model = build_model(build_config(mdlm_config(HF)), HF["vocab_size"] - 1)
    mapped = mdlm_to_augdiff(mdlm_state())
    missing, unexpected = model.load_state_dict(mapped, strict=True)
    assert not missing and not unexpected
    assert torch.equal(model.network.blocks[1].norm2.weight, mapped["network.blocks.1.norm2.weight"])
    with pytest.raises(AugdiffError, match="not a weight of MDLM"):
        mdlm_to_augdiff({"backbone.something_else": torch.zeros(1)})


def test_scaled_norms_matter_and_unit_scales_are_the_plain_dit():
    cfg = build_config(mdlm_config(HF))
    model = build_model(cfg, 10).eval()
    model.load_state_dict(mdlm_to_augdiff(mdlm_state()))
    x, t = torch.randint(0, 11, (2, 16)), torch.zeros(2)
    with torch.no_grad():
        scaled = model.network(x, t).logits
        for name, p in model.named_parameters():
            if "norm" in name:
                p.fill_(1.0)
        unit = model.network(x, t).logits
        plain = build_model(
            build_config({**mdlm_config(HF), "model": {**mdlm_config(HF)["model"], "norm_affine": False}}), 10
        )
        plain.load_state_dict({k: v for k, v in model.state_dict().items() if "norm" not in k})
        assert not torch.allclose(scaled, unit)
        torch.testing.assert_close(plain.eval().network(x, t).logits, unit)


def test_import_mdlm_writes_a_folder_augdiff_samples_from(tmp_path):
    src = tmp_path / "mdlm-owt"
    src.mkdir()
    save_file(mdlm_state(), src / "model.safetensors")
    (src / "config.json").write_text(json.dumps(HF))
    from tokenizers import Tokenizer, models, pre_tokenizers

    tok = Tokenizer(models.WordLevel({f"w{i}": i for i in range(10)} | {"[UNK]": 10}, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(tmp_path / "tokenizer.json"))
    out = tmp_path / "model"
    assert main(["import-mdlm", str(src), str(out), "--tokenizer", str(tmp_path / "tokenizer.json")]) == 0
    loaded = load_run(out)
    assert loaded.config.model.norm_affine and loaded.data["vocab_size"] == 10
    samples = loaded.model.sample(2, 16, 4)
    assert samples.shape == (2, 16) and (samples < 10).all()
    assert main(["import-mdlm", str(tmp_path), str(tmp_path / "x"), "--tokenizer", "t.json"]) == 2
