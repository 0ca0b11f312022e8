"""``backbone: hf:PATH``: a tiny random Qwen2 / Llama, saved locally, as a bidirectional CADD denoiser; a tiny
model that ships its own code (``auto_map``, Dream style: ``AutoModel`` only) behind ``trust_remote_code``."""

import json
import math
import shutil
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

pytest.importorskip("transformers")
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModel,
    LlamaConfig,
    LlamaForCausalLM,
    Qwen2Config,
    Qwen2ForCausalLM,
    dynamic_module_utils,
)

from augdiff.cli.main import main  # noqa: E402
from augdiff.config import build_config  # noqa: E402
from augdiff.errors import AugdiffError  # noqa: E402
from augdiff.flops import sampling_step_flops  # noqa: E402
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
    logits = net(x, torch.rand(2)).logits
    assert logits.shape == (2, 8, VOCAB + 1)
    full = net.model(input_ids=torch.where(x == VOCAB, 18, x)).logits
    torch.testing.assert_close(logits[..., VOCAB], full[..., 18])  # mask state ← the model's mask token
    torch.testing.assert_close(logits[..., :VOCAB], full[..., :VOCAB])
    # brute force: changing the last token changes the first position's logits (a causal model would not)
    y = x.clone()
    y[:, -1] = (y[:, -1] + 1) % VOCAB
    assert (net(y, torch.rand(2)).logits[:, 0] - logits[:, 0]).abs().max() > 1e-4


def test_embedding_rows_follow_augdiff_ids_and_input_embeds_change_the_output(qwen_dir):
    net = HFBackbone(qwen_dir, VOCAB).eval()
    table = net.model.get_input_embeddings().weight
    w = net.embedding_weight()
    assert w.shape == (VOCAB + 1, 32)
    assert torch.equal(w[:VOCAB], table[:VOCAB]) and torch.equal(w[VOCAB], table[18])
    x = torch.randint(0, VOCAB + 1, (2, 6))
    t = torch.rand(2)
    torch.testing.assert_close(net(x, t, input_embeds=net.embed_tokens(x)).logits, net(x, t).logits)
    z = torch.randn(2, 6, 32)  # CADD's fusion: w(x_t) + z_t
    assert (net(x, t, input_embeds=net.embed_tokens(x) + z).logits - net(x, t).logits).abs().max() > 1e-3


def test_sampling_flops_of_a_wrapped_model_are_measured_and_eq77_is_not_claimed(qwen_dir):
    model = build_model(build_config({"method": "mdlm", "backbone": f"hf:{qwen_dir}"}), VOCAB, 8).eval()
    got = sampling_step_flops(model, 1, 8)
    assert got["measured_gflops"] > got["measured_head_gflops"] == 2 * 8 * 32 * (VOCAB + 1) / 1e9
    assert math.isnan(got["analytic_gflops"])  # grouped-query attention and a gated MLP are not Eq 77's blocks


def test_a_model_without_mask_token_gets_one_more_row(tmp_path):
    net = HFBackbone(save_tiny(tmp_path, mask_token_id=None), 20)
    assert net.cfg.mask_token_id == 20 and net.model.get_input_embeddings().num_embeddings == 21
    assert net(torch.full((1, 4), 20), torch.rand(1)).logits.shape == (1, 4, 21)
    # The mask row follows the data rows: states are the first V + 1 rows and logits (a view, no gather).
    net.eval()
    x = torch.randint(0, 21, (2, 5))
    torch.testing.assert_close(net(x, torch.rand(2)).logits, net.model(input_ids=x).logits[..., :21])
    assert torch.equal(net.embedding_weight(), net.model.get_input_embeddings().weight[:21])


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
    with pytest.raises(AugdiffError, match="not for method=ar"):
        build_model(build_config({"backbone": f"hf:{qwen_dir}", "method": "ar"}), VOCAB)


def save_tokens(tmp_path):
    """64 rows of 12 tokens below VOCAB with a learnable pattern."""
    rows = np.random.default_rng(0).integers(0, VOCAB, size=(64, 12))
    rows[:, ::2] = 3
    np.save(tmp_path / "tokens.npy", rows)
    return tmp_path / "tokens.npy"


def fit_cadd(tmp_path, model_dir, **keys):
    """Six CADD steps on the HF backbone in ``model_dir`` → (trainer, result, losses)."""
    cfg = {
        "method": "cadd",
        "backbone": f"hf:{model_dir}",
        "data": f"tokens:{save_tokens(tmp_path)}",
        "vocab_size": VOCAB,
        "steps": 6,
        "batch_size": 8,
        "log_every": 1,
        "progress": False,
        "tensorboard": False,
        "device": "cpu",
        "optim": {"lr": 3e-3, "warmup_steps": 0, "ema_decay": 0.5},
    }
    trainer = Trainer(build_config({**cfg, **keys}), tmp_path / "run")
    result = trainer.fit()
    losses = [float(line.split('"loss": ')[1].split(",")[0]) for line in (tmp_path / "run" / "metrics.jsonl").open()]
    assert len(losses) == 6 and all(math.isfinite(v) for v in losses), losses
    return trainer, result, losses


def test_cadd_fine_tunes_the_hf_model_and_the_run_restores(tmp_path, qwen_dir):
    trainer, result, losses = fit_cadd(tmp_path, qwen_dir)
    assert min(losses[-3:]) < losses[0], losses
    assert math.isfinite(result.final_loss)
    run = load_run(tmp_path / "run", weights="raw")
    restored, trained = run.model.network, trainer.model.network.eval()
    pretrained = HFBackbone(qwen_dir, VOCAB)
    assert not torch.equal(restored.embedding_weight(), pretrained.embedding_weight())  # the HF weights trained
    x = torch.randint(0, VOCAB + 1, (2, 12))
    t = torch.rand(2)
    with torch.no_grad():
        assert torch.equal(restored(x, t).logits, trained(x, t).logits)


# A masked diffusion LM that ships its own code, Dream style (auto_map: AutoConfig and AutoModel only): one
# bidirectional encoder layer; ``head: false`` makes it a bare encoder without logits.
CONFIGURATION_CODE = """
from transformers import PretrainedConfig


class TinyMDMConfig(PretrainedConfig):
    model_type = "tinymdm"

    def __init__(self, vocab_size=20, hidden_size=32, mask_token_id=18, head=True, **kwargs):
        self.vocab_size, self.hidden_size, self.mask_token_id, self.head = vocab_size, hidden_size, mask_token_id, head
        super().__init__(**kwargs)
"""
MODELING_CODE = """
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput, MaskedLMOutput

from .configuration_tinymdm import TinyMDMConfig


class TinyMDM(PreTrainedModel):
    config_class = TinyMDMConfig

    def __init__(self, config):
        super().__init__(config)
        width = config.hidden_size
        self.embed = nn.Embedding(config.vocab_size, width)
        self.layer = nn.TransformerEncoderLayer(width, 2, 2 * width, dropout=0.0, batch_first=True)
        self.lm_head = nn.Linear(width, config.vocab_size) if config.head else None
        self.post_init()

    def get_input_embeddings(self):
        return self.embed

    def set_input_embeddings(self, value):
        self.embed = value

    def get_output_embeddings(self):
        return self.lm_head

    def forward(self, input_ids=None, inputs_embeds=None, attention_mask=None, **kwargs):
        h = self.embed(input_ids) if inputs_embeds is None else inputs_embeds
        h = self.layer(h, src_key_padding_mask=None if attention_mask is None else attention_mask == 0)
        if self.lm_head is None:
            return BaseModelOutput(last_hidden_state=h)
        return MaskedLMOutput(logits=self.lm_head(h))
"""
AUTO_MAP = {"AutoConfig": "configuration_tinymdm.TinyMDMConfig", "AutoModel": "modeling_tinymdm.TinyMDM"}


@pytest.fixture(scope="module")
def mdm_dir(tmp_path_factory):
    """The custom-code model, saved; transformers copies its code into a module cache kept in tmp, not ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dynamic_module_utils, "HF_MODULES_CACHE", str(tmp_path_factory.mktemp("hf_modules")))
        mp.setattr(sys, "path", list(sys.path))  # transformers appends its module cache
        path = tmp_path_factory.mktemp("tinymdm")
        (path / "configuration_tinymdm.py").write_text(CONFIGURATION_CODE)
        (path / "modeling_tinymdm.py").write_text(MODELING_CODE)
        (path / "config.json").write_text(json.dumps({"model_type": "tinymdm", "auto_map": AUTO_MAP}))
        torch.manual_seed(0)
        config = AutoConfig.from_pretrained(path, trust_remote_code=True, local_files_only=True)
        AutoModel.from_config(config, trust_remote_code=True).save_pretrained(path)
        assert json.loads((path / "config.json").read_text())["auto_map"] == AUTO_MAP
        yield path
        for name in [n for n in sys.modules if n.split(".")[0] == "transformers_modules"]:
            del sys.modules[name]


def test_own_code_runs_only_with_trust_remote_code(tmp_path, mdm_dir):
    with pytest.raises(AugdiffError, match="trust_remote_code=true") as refused:
        HFBackbone(mdm_dir, VOCAB)
    message = str(refused.value)
    assert len(message.splitlines()) == 1 and str(mdm_dir) in message and "--trust-remote-code" in message
    net = HFBackbone(mdm_dir, VOCAB, trust_remote_code=True).eval()
    assert type(net.model).__name__ == "TinyMDM" and net.cfg.mask_token_id == 18
    x = torch.randint(0, VOCAB + 1, (2, 8))
    logits = net(x, torch.rand(2)).logits
    assert logits.shape == (2, 8, VOCAB + 1)
    torch.testing.assert_close(logits[..., VOCAB], net.model(input_ids=torch.where(x == VOCAB, 18, x)).logits[..., 18])
    bare = tmp_path / "bare"  # the same code with no LM head: AutoModel gives no logits
    shutil.copytree(mdm_dir, bare)
    config = json.loads((bare / "config.json").read_text())
    (bare / "config.json").write_text(json.dumps({**config, "head": False}))
    with pytest.raises(AugdiffError, match="returns no logits"):
        HFBackbone(bare, VOCAB, trust_remote_code=True)


def test_cadd_fine_tunes_a_model_with_its_own_code_and_the_run_restores(tmp_path, mdm_dir):
    trainer, _, _ = fit_cadd(tmp_path, mdm_dir, trust_remote_code=True)
    run = load_run(tmp_path / "run", weights="raw")  # rebuilt from config.yaml: the flag comes with it
    assert run.config.trust_remote_code
    x = torch.randint(0, VOCAB + 1, (2, 12))
    with torch.no_grad():
        assert torch.equal(
            run.model.network(x, torch.rand(2)).logits, trainer.model.network.eval()(x, torch.rand(2)).logits
        )


def test_cli_refuses_own_code_without_the_flag_and_resumes_with_it(tmp_path, capsys, mdm_dir):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--method", "cadd", "--backbone", f"hf:{mdm_dir}", "--steps", "2"]
    args += ["--data", f"tokens:{save_tokens(tmp_path)}", "vocab_size=16", "--batch-size", "8", "--device", "cpu"]
    args += ["progress=false", "tensorboard=false"]
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--trust-remote-code" in err, err
    assert not out.exists()
    assert main([*args, "--trust-remote-code"]) == 0
    assert "trust_remote_code: true" in (out / "config.yaml").read_text()
    assert main(["train", "--resume", str(out), "--steps", "3"]) == 0


def test_a_hub_model_is_sampled_and_evaluated_as_it_is(tmp_path, qwen_dir):
    """``steps=0``: no training; the run holds the hf model's own weights, and sampling and eval read it."""
    tokens = save_tokens(tmp_path)
    out = tmp_path / "as-is"
    args = ["train", "--method", "mdlm", "--backbone", f"hf:{qwen_dir}", "--data", f"tokens:{tokens}", "--steps", "0"]
    assert main([*args, "--out", str(out), f"vocab_size={VOCAB}", "progress=false", "tensorboard=false"]) == 0
    run = load_run(out)
    assert run.step == 0
    fresh = build_model(build_config({"method": "mdlm", "backbone": f"hf:{qwen_dir}"}), VOCAB)
    for key, value in fresh.state_dict().items():
        assert torch.equal(value, run.model.state_dict()[key]), key
    assert main(["sample", str(out), "--num", "2", "--steps", "3", "--out", str(tmp_path / "s.npy")]) == 0
    assert main(["eval", str(out), "--data", f"tokens:{tokens}", "--bound-steps", "none", "--time-samples", "1"]) == 0
