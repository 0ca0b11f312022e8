"""sft:PATH.jsonl: prompt/response rows, the prompt given and never scored, the response trained as usual."""

import json

import pytest
import torch

from augdiff.cli.main import main
from augdiff.config import build_config
from augdiff.data import make_dataset
from augdiff.data.sft import SFTCorpus, _rows
from augdiff.data.tokenizer import CharTokenizer
from augdiff.errors import AugdiffError
from augdiff.losses import masked_diffusion_nll
from augdiff.methods import build_model

PAIRS = [("ab=", "ba"), ("abc=", "cba"), ("a=", "a"), ("cab=", "bac"), ("bb=", "bb"), ("ca=", "ac")]


def write(path, pairs):
    path.write_text("".join(json.dumps({"prompt": p, "response": r}) + "\n" for p, r in pairs))
    return path


class WithSpecials(CharTokenizer):
    """Characters plus BOS and EOS ids after them."""

    def __init__(self, chars):
        super().__init__(chars)
        self.bos_id, self.eos_id = len(chars), len(chars) + 1

    @property
    def vocab_size(self):
        return len(self.chars) + 2


def test_rows_hold_the_prompt_fixed_and_pad_with_eos_when_there_is_one(tmp_path):
    corpus = SFTCorpus("sft:x", write(tmp_path / "p.jsonl", PAIRS[:2]))
    tok = WithSpecials("=abc")
    rows, fixed, dropped = _rows(corpus, tok, 9)
    assert dropped == 0
    # [BOS] a b = | b a EOS EOS EOS EOS : the EOS padding is response (scored), as LLaDA's SFT
    assert rows[0].tolist() == [tok.bos_id, 1, 2, 0, 2, 1, tok.eos_id, tok.eos_id, tok.eos_id]
    assert fixed[0].tolist() == [True] * 4 + [False] * 5
    chars = CharTokenizer("=abc")
    rows, fixed, _ = _rows(corpus, chars, 8)  # no EOS: padded with id 0, scored as response
    assert fixed[1].tolist() == [True] * 4 + [False] * 4 and rows[0].tolist()[-2:] == [0, 0]
    _, _, dropped = _rows(corpus, chars, 5)
    assert dropped == 1  # "abc=cba" is 7 characters


def test_the_fixed_mask_follows_the_rows_of_every_batch(tmp_path):
    data = make_dataset(f"sft:{write(tmp_path / 'p.jsonl', PAIRS * 4)}", seq_len=8)
    eq = data.tokenizer.encode("=")[0]
    for step in range(4):
        x = data.train_batch(0, step, 6)
        fixed = data.train_fixed(0, step, 6)
        # the prompt ends with "=": the last fixed position of each row holds it, the first free one does not
        last_fixed = fixed.long().cumprod(1).sum(1) - 1
        assert (x[torch.arange(6), last_fixed] == eq).all()
        torch.testing.assert_close(data.train_fixed(0, step, 6, slice(2, 4)), fixed[2:4])


@pytest.mark.parametrize("method", ["mdlm", "cadd"])
def test_the_loss_keeps_the_prompt_and_scores_only_the_response(method):
    """x_t equals x_0 at fixed positions; the per-sequence NLL is the ELBO terms of the other positions alone."""
    torch.manual_seed(0)
    model = build_model(build_config({"method": method, "model_size": "xxs", "seq_len": 8}), 4).eval()
    x0 = torch.randint(0, 4, (5, 8))
    fixed = torch.zeros(5, 8, dtype=torch.bool)
    fixed[:, :3] = True
    t = torch.full((5,), 0.9)
    gen = torch.Generator().manual_seed(1)
    out = model.loss(x0, t, gen, fixed=fixed)
    gen = torch.Generator().manual_seed(1)
    sched = model.schedule(t)
    x_t, _, log_p, _ = model.denoise(x0, t, sched.alpha_t, gen, None, fixed)
    assert torch.equal(x_t[fixed], x0[fixed]) and (x_t[~fixed] == model.mask_id).any()
    terms = masked_diffusion_nll(log_p, x0, x_t, sched.elbo_weight, model.mask_id, ~fixed)
    torch.testing.assert_close(out.nll_per_sequence, terms / 5)


def test_ar_scores_the_response_given_the_prompt():
    torch.manual_seed(0)
    model = build_model(build_config({"method": "ar", "model_size": "xxs", "seq_len": 8}), 4).eval()
    x0 = torch.randint(0, 4, (3, 8))
    fixed = torch.zeros(3, 8, dtype=torch.bool)
    fixed[:, :5] = True
    out = model.loss(x0, torch.rand(3), fixed=fixed)
    torch.testing.assert_close(out.nll_per_sequence, model.token_nll(x0)[:, 5:].mean(-1).detach())


def test_training_on_pairs_from_the_command_line(tmp_path):
    data = write(tmp_path / "pairs.jsonl", PAIRS * 4)
    for method in ("mdlm", "ar"):
        args = ["train", "--method", method, "--data", f"sft:{data}", "--model-size", "xxs", "--batch-size", "4"]
        args += ["--steps", "2", "seq_len=8", "progress=false", "tensorboard=false", "--out", str(tmp_path / method)]
        assert main(args) == 0


@pytest.mark.parametrize(
    "content,message",
    [
        ('{"prompt": "a"}\n{"prompt": "b", "response": "c"}\n', "line 1 needs string fields prompt and response"),
        ("not json\n", "line 1 is not JSON"),
        ('{"prompt": "a", "response": "b"}\n', "1 pair(s); need at least 2"),
        ('{"prompt": "aaaaaaaaaa", "response": "b"}\n' * 3, "0 of 3 pairs fit seq_len=8"),
    ],
)
def test_bad_pair_files_are_one_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(AugdiffError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_dataset(f"sft:{path}", seq_len=8)


def test_fine_tuning_on_pairs_speaks_the_tokenizer_of_the_run_it_starts_from(tmp_path, capsys):
    """--init-from: the pairs are encoded with the pre-trained run's characters (a wider vocabulary than theirs)."""
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("abc= cab= bca= xyz\n" * 40)
    base = tmp_path / "base"
    common = ["--model-size", "xxs", "--batch-size", "4", "--steps", "2", "seq_len=8", "progress=false"]
    common += ["tensorboard=false"]
    assert main(["train", "--method", "mdlm", "--data", f"text:{corpus}", "--out", str(base), *common]) == 0
    pairs = write(tmp_path / "pairs.jsonl", PAIRS * 4)
    sft = tmp_path / "sft"
    args = ["train", "--method", "cadd", "--data", f"sft:{pairs}", "--init-from", str(base), "--out", str(sft)]
    assert main([*args, *common]) == 0
    assert json.loads((sft / "data.json").read_text())["chars"] == json.loads((base / "data.json").read_text())["chars"]
    foreign = write(tmp_path / "foreign.jsonl", [("q=", "r")] * 4)
    args = ["train", "--method", "cadd", "--data", f"sft:{foreign}", "--init-from", str(base)]
    assert main([*args, "--out", str(tmp_path / "f"), *common]) == 2
    assert "not in the model's vocabulary" in capsys.readouterr().err
