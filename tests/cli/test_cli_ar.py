"""``--method ar`` through the command line: train, sample (text with a prefix), eval, bench, flops."""

import json

import numpy as np
import pytest

from augdiff.cli.main import main
from augdiff.flops import ar_token_flops

TINY = ["--model-size", "xxs", "--batch-size", "8", "progress=false", "tensorboard=false", "seq_len=32"]


@pytest.fixture(scope="module")
def ar_text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("ar")
    corpus = root / "corpus.txt"
    corpus.write_text("to be or not to be, that is the question. " * 30)
    out = root / "run"
    assert main(["train", "--method", "ar", "--data", f"text:{corpus}", "--steps", "4", "--out", str(out), *TINY]) == 0
    return out, corpus


def test_train_writes_an_ar_run(ar_text_run):
    run, _ = ar_text_run
    assert (run / "checkpoints" / "latest").read_text().strip() == "step_00000004"
    assert "method: ar" in (run / "config.yaml").read_text()


def test_sample_text_with_a_prefix(ar_text_run, tmp_path):
    run, _ = ar_text_run
    out = tmp_path / "t.txt"
    args = ["sample", str(run), "--num", "3", "--out", str(out), "--prefix", "to be", "--top-p", "0.9"]
    assert main([*args, "--temperature", "0.8", "--device", "cpu"]) == 0
    blocks = out.read_text().split("===== sample")[1:]
    assert len(blocks) == 3 and all(block.split("\n", 1)[1].startswith("to be") for block in blocks)


def test_sample_ids_with_and_without_the_kv_cache_agree(ar_text_run, tmp_path):
    run, _ = ar_text_run
    a, b = tmp_path / "a.npy", tmp_path / "b.npy"
    assert main(["sample", str(run), "--num", "4", "--batch-size", "3", "--out", str(a)]) == 0
    assert main(["sample", str(run), "--num", "4", "--batch-size", "3", "--out", str(b), "--no-cache"]) == 0
    assert np.load(a).shape == (4, 32) and np.array_equal(np.load(a), np.load(b))


@pytest.mark.parametrize("flag", [["--k", "2"], ["--inference", "sequential"], ["--t-min", "0.1"]])
def test_sample_refuses_diffusion_options(ar_text_run, tmp_path, capsys, flag):
    run, _ = ar_text_run
    assert main(["sample", str(run), "--out", str(tmp_path / "x.npy"), *flag]) == 2
    err = capsys.readouterr().err
    assert flag[0] in err and "ar" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.npy").exists()


def test_eval_reports_the_exact_nll(ar_text_run, capsys):
    run, corpus = ar_text_run
    capsys.readouterr()
    assert main(["eval", str(run), "--data", f"text:{corpus}", "--time-samples", "4"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["time_samples"] == 0 and 0 < result["nll"] < np.log(100)


def test_bench_train_and_sample(capsys):
    shape = ["--model-size", "xxs", "--seq-len", "8", "--batch-size", "4", "--vocab-size", "20", "--device", "cpu"]
    for mode in ("train", "sample"):
        capsys.readouterr()
        assert main(["bench", mode, "--method", "ar", *shape, "--steps", "2", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["method"] == "ar" and result["tokens_per_s"] > 0


def test_flops_per_generated_token(capsys):
    capsys.readouterr()
    args = ["flops", "--method", "ar", "--model-size", "xxs", "--seq-len", "16", "--vocab-size", "20", "--json"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    part = result["parts"]["ar token"]
    assert part["analytic_gflops"] == pytest.approx(ar_token_flops(16, 32, 4, 4) / 1e9)
    assert part["measured_gflops"] > part["analytic_gflops"] + part["measured_head_gflops"]


def test_a_bpe_run_samples_to_text_and_takes_a_prefix_after_bos(tmp_path):
    """``.txt`` samples of a BPE model are decoded text (not ids); ``--prefix`` follows the row's BOS."""
    from dummies import tiny_english

    corpus = tmp_path / "corpus.txt"
    corpus.write_text(tiny_english(120, seed=1))
    out = tmp_path / "run"
    bpe = ["text.tokenizer=bpe", "text.bpe_vocab_size=300", "text.packing=wrap"]
    train = ["train", "--method", "ar", "--data", f"text:{corpus}", "--steps", "2", "--out", str(out), *TINY, *bpe]
    assert main(train) == 0
    txt, npy = tmp_path / "s.txt", tmp_path / "s.npy"
    prefix = ["--prefix", "The cat", "--device", "cpu"]
    assert main(["sample", str(out), "--num", "2", "--out", str(txt), *prefix]) == 0
    assert main(["sample", str(out), "--num", "2", "--out", str(npy), *prefix]) == 0
    blocks = txt.read_text().split("===== sample")[1:]
    assert len(blocks) == 2 and all(block.split("\n", 1)[1].startswith("The cat") for block in blocks)
    ids = np.load(npy)
    assert (ids[:, 0] == 0).all()  # [BOS], id 0 of a BPE trained here, then the prefix
