"""``backbone: hf:PATH``: a tiny random Qwen2 / Llama, saved locally, as a bidirectional CADD denoiser."""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("transformers")
from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM  # noqa: E402

from augdiff.config import build_config  # noqa: E402
from augdiff.errors import AugdiffError  # noqa: E402
from augdiff.methods import build_model  # noqa: E402
from augdiff.nn.hf_backbone import HFBackbone  # noqa: E402
from augdiff.runs import load_run  # noqa: E402
from augdiff.train import Trainer  # noqa: E402

VOCAB = 16  # data tokens 0…15; the model's vocabulary of 20 holds the mask token at 18


def save_tiny(path, kind="qwen2", mask_token_id=18, tie=False):
    config_cls, model_cls = {"qwen2": (Qwen2Config, Qwen2ForCausalLM), "llama": (LlamaConfig, LlamaForCausalLM)}[kind]
    config = config_cls(
        vocab_size=20,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=64,
        mask_token_id=mask_token_id,
        tie_word_embeddings=tie,
    )
    torch.manual_seed(0)
    model_cls(config).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    return save_tiny(tmp_path_factory.mktemp("qwen2"))


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_logits_cover_data_tokens_and_mask_and_attention_is_bidirectional(tmp_path, kind):
    net = HFBackbone(save_tiny(tmp_path, kind), VOCAB).eval()
    assert net.cfg.hidden_size == 32 and net.cfg.vocab_size == VOCAB + 1 and not net.time_conditioned
    x = torch.randint(0, VOCAB, (2, 8))
    x[:, 3] = VOCAB  # augdiff's mask id
    logits = net(x, torch.rand(2))
    assert logits.shape == (2, 8, VOCAB + 1)
    full = net.model(input_ids=torch.where(x == VOCAB, 18, x)).logits
    torch.testing.assert_close(logits[..., VOCAB], full[..., 18])  # mask state ← the model's mask token
    torch.testing.assert_close(logits[..., :VOCAB], full[..., :VOCAB])
    # brute force: changing the last token changes the first position's logits (a causal model would not)
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % VOCAB
    assert (net(y, torch.rand(2))[:, 0] - logits[:, 0]).abs().max() > 1e-4


def test_embedding_rows_follow_augdiff_ids_and_input_embeds_change_the_output(qwen_dir):
    net = HFBackbone(qwen_dir, VOCAB).eval()
    table = net.model.get_input_embeddings().weight
    w = net.embedding_weight()
    assert w.shape == (VOCAB + 1, 32)
    assert torch.equal(w[:VOCAB], table[:VOCAB]) and torch.equal(w[VOCAB], table[18])
    x = torch.randint(0, VOCAB + 1, (2, 6))
    t = torch.rand(2)
    torch.testing.assert_close(net(x, t, input_embeds=net.embed_tokens(x)), net(x, t))
    z = torch.randn(2, 6, 32)  # CADD's fusion: w(x_t) + z_t
    assert (net(x, t, input_embeds=net.embed_tokens(x) + z) - net(x, t)).abs().max() > 1e-3


def test_a_model_without_mask_token_gets_one_more_row(tmp_path):
    net = HFBackbone(save_tiny(tmp_path, mask_token_id=None), 20)
    assert net.cfg.mask_token_id == 20 and net.model.get_input_embeddings().num_embeddings == 21
    assert net(torch.full((1, 4), 20), torch.rand(1)).shape == (1, 4, 21)


def test_tied_weights_are_saved_once_and_restored(tmp_path):
    net = HFBackbone(save_tiny(tmp_path, tie=True), VOCAB)
    state = net.state_dict()
    assert "model.lm_head.weight" not in state and "model.model.embed_tokens.weight" in state
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")  # no shared memory
    state["model.model.embed_tokens.weight"] = state["model.model.embed_tokens.weight"] + 1.0
    net.load_state_dict(state)
    assert net.model.lm_head.weight is net.model.get_input_embeddings().weight
    torch.testing.assert_close(net.model.lm_head.weight, state["model.model.embed_tokens.weight"])


def test_errors_speak_to_the_user(tmp_path, qwen_dir):
    with pytest.raises(AugdiffError, match="not a local directory"):
        HFBackbone(tmp_path / "missing", VOCAB)
    with pytest.raises(AugdiffError, match="not a local directory"):
        HFBackbone("Qwen/Qwen2.5-0.5B", VOCAB)  # hub names are never downloaded
    with pytest.raises(AugdiffError, match="mask token 18"):
        HFBackbone(qwen_dir, 19)
    with pytest.raises(AugdiffError, match="backbone"):
        build_config({"backbone": "gpt2"})
    with pytest.raises(AugdiffError, match="mdlm | cadd"):
        build_model(build_config({"backbone": f"hf:{qwen_dir}", "method": "co-ladd"}), VOCAB)
    with pytest.raises(AugdiffError, match="not ar"):
        build_model(build_config({"backbone": f"hf:{qwen_dir}", "method": "ar"}), VOCAB)


def test_cadd_fine_tunes_the_hf_model_and_the_run_restores(tmp_path, qwen_dir):
    rows = np.random.default_rng(0).integers(0, VOCAB, size=(64, 12))
    rows[:, ::2] = 3  # a learnable pattern
    np.save(tmp_path / "tokens.npy", rows)
    cfg = build_config(
        {
            "method": "cadd",
            "backbone": f"hf:{qwen_dir}",
            "data": f"tokens:{tmp_path / 'tokens.npy'}",
            "vocab_size": VOCAB,
            "steps": 6,
            "batch_size": 8,
            "log_every": 1,
            "progress": False,
            "tensorboard": False,
            "device": "cpu",
            "optim": {"lr": 3e-3, "warmup_steps": 0, "ema_decay": 0.5},
        }
    )
    trainer = Trainer(cfg, tmp_path / "run")
    result = trainer.fit()
    losses = [float(line.split('"loss": ')[1].split(",")[0]) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses), losses
    assert min(losses[-3:]) < losses[0], losses
    assert math.isfinite(result.final_loss)
    run = load_run(tmp_path / "run", weights="raw")
    restored, trained = run.model.network, trainer.model.network.eval()
    pretrained = HFBackbone(qwen_dir, VOCAB)
    assert not torch.equal(restored.embedding_weight(), pretrained.embedding_weight())  # the HF weights trained
    x = torch.randint(0, VOCAB + 1, (2, 12))
    t = torch.rand(2)
    with torch.no_grad():
        assert torch.equal(restored(x, t), trained(x, t))
