"""Zero-shot perplexity: the corpora's detokenizers, and ``augdiff eval --zero-shot`` on stand-in corpora."""

import json

import pytest
from dummies import tiny_english

import augdiff.data.hub as hub
from augdiff.cli.main import main
from augdiff.data.detokenize import (
    lambada_detokenize,
    lm1b_detokenize,
    ptb_detokenize,
    scientific_papers_detokenize,
    wikitext_detokenize,
)
from augdiff.data.hub import ZERO_SHOT


@pytest.mark.parametrize(
    "fn, raw, clean",
    [
        (wikitext_detokenize, " = = Early life = = \n", " == Early life ==\n"),
        (
            wikitext_detokenize,
            "the 1 @,@ 000 @-@ year ( AD ) war , he said . Then",
            "the 1,000-year (AD) war, he said. Then",
        ),
        (wikitext_detokenize, 'the " big " dogs \' owners', 'the "big" dogs\' owners'),
        (ptb_detokenize, "it 's N N cents , he did n't <unk>", "it's 1 1 cents , he didn't ?"),
        (ptb_detokenize, "a $ N price and 1\\/2", "a $1 price and 1/2"),
        (lm1b_detokenize, "see http : / / x.org , it 's ( fine ) , ok .", "see http://x.org, it's (fine), ok."),
        (lambada_detokenize, " \u201cHi\u201d, she said ", '\n"Hi", she said'),
        (scientific_papers_detokenize, "we use @xmath0 ( see [ 1 ] ) , as in .", "we use @xmath0 (see [1]), as in."),
    ],
)
def test_detokenizers(fn, raw, clean):
    assert fn(raw) == clean


def test_every_corpus_names_its_split_column_and_detokenizer():
    assert set(ZERO_SHOT) == {"wikitext2", "wikitext103", "ptb", "lambada", "ag_news", "pubmed", "arxiv", "lm1b"}
    assert ZERO_SHOT["ptb"].field == "sentence" and ZERO_SHOT["pubmed"].field == "article"
    assert ZERO_SHOT["lambada"].valid_split == "test" and ZERO_SHOT["wikitext2"].valid_split == "validation"
    assert all(s.train_split == s.valid_split for s in ZERO_SHOT.values())  # one split: evaluation only


@pytest.fixture
def fake_hub(monkeypatch, tmp_path):
    """The hub answers; load_dataset returns a few paragraphs in each corpus's raw format (ptb fails)."""
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("AUGDIFF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(hub, "hub_unreachable", lambda *a, **k: None)
    calls = []

    def load_dataset(repo, name=None, data_dir=None, revision=None, split=None):
        calls.append((repo, name, data_dir, split))
        if repo.startswith("ptb"):
            raise ConnectionError("no such file on this mirror")
        text = tiny_english(40, seed=len(calls)).replace(",", " @,@ ")
        return {"text": text.split("\n"), "sentence": text.split("\n"), "article": [text]}

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    return calls


def test_eval_zero_shot_reports_each_corpus_and_skips_one_it_cannot_load(tmp_path, fake_hub, capsys):
    corpus = tmp_path / "train.txt"
    corpus.write_text(tiny_english(200, seed=0))
    run = tmp_path / "run"
    bpe = ["text.tokenizer=bpe", "text.bpe_vocab_size=300", "text.packing=wrap", "seq_len=32"]
    args = ["train", "--method", "mdlm", "--data", f"text:{corpus}", "--model-size", "xxs", "--steps", "3"]
    assert main([*args, "--batch-size", "4", "--out", str(run), "progress=false", "tensorboard=false", *bpe]) == 0
    capsys.readouterr()
    out_json, out_md = tmp_path / "z.json", tmp_path / "z.md"
    argv = ["eval", str(run), "--zero-shot", "wikitext2,ptb,lambada", "--time-samples", "2"]
    assert main([*argv, "--out-json", str(out_json), "--out-md", str(out_md)]) == 0
    err = capsys.readouterr().err
    assert err.count("--zero-shot ptb: skipped") == 1
    result = json.loads(out_json.read_text())["zero_shot"]
    assert set(result) == {"wikitext2", "ptb", "lambada"} and "error" in result["ptb"]
    for name in ("wikitext2", "lambada"):
        assert result[name]["ppl"] > 1 and result[name]["bound_ppl"] >= result[name]["ppl"] * 0.5
    table = out_md.read_text()
    assert "| wikitext2 |" in table and "not loaded" in table and "ELBO" in table
    assert ("Salesforce/wikitext", "wikitext-2-raw-v1", None, "validation") in fake_hub
    assert ("EleutherAI/lambada_openai", "default", None, "test") in fake_hub


def test_zero_shot_and_data_are_one_or_the_other(tmp_path, capsys):
    assert main(["eval", str(tmp_path), "--zero-shot", "wikitext2", "--data", "sawtooth"]) == 2
    assert main(["eval", str(tmp_path), "--zero-shot", "imagenet"]) == 2
    assert "unknown imagenet" in capsys.readouterr().err


def test_corpora_of_one_repository_and_their_detokenizers_have_their_own_cache_rows():
    ids = {name: hub.HubCorpus(f"hf:zero-shot-{name}", f"zero-shot-{name}").identity() for name in ZERO_SHOT}
    assert ids["wikitext2"] != ids["wikitext103"]  # one repository, two configs
    assert ids["pubmed"] != ids["arxiv"]
    assert "lm1b_detokenize" in ids["lm1b"]["detokenize"]


def test_any_hub_dataset_by_owner_and_name(fake_hub, tmp_path):
    corpus = hub.HubCorpus("hf:someone/stories:en", "someone/stories:en")
    assert corpus.source.repo == "someone/stories" and corpus.source.config == "en"
    train, valid = corpus.documents("wrap")
    assert train and valid
    assert ("someone/stories", "en", None, "train") in fake_hub and (
        "someone/stories",
        "en",
        None,
        "validation",
    ) in fake_hub
    with pytest.raises(Exception, match="owner/name"):
        hub.HubCorpus("hf:nonsense", "nonsense")
