"""The text pipeline: packing boundaries, the on-disk cache, hub failures, config keys, and text → rows → text."""

import threading
import time

import numpy as np
import pytest
import torch
from dummies import tiny_english

from augdiff.config import TextConfig, build_config
from augdiff.data import hub, make_dataset, pack_none, pack_pad, pack_wrap, tokenizer_from_description
from augdiff.data.cache import cache_key
from augdiff.data.text import split_documents
from augdiff.data.tokenizer import BPETokenizer, CharTokenizer
from augdiff.data.tokens import chunk_text
from augdiff.errors import AugdiffError

BOS, EOS, PAD = 0, 1, 2
BPE = TextConfig(tokenizer="bpe", bpe_vocab_size=300)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGDIFF_CACHE", str(tmp_path / "cache"))


@pytest.fixture
def corpus(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text(tiny_english(200, seed=0))
    return path


def random_docs(seed: int, n: int = 30) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(3, 50, size=rng.integers(0, 20)).astype(np.int32) for _ in range(n)]


@pytest.mark.parametrize("seq_len", [3, 4, 7, 16])
def test_wrap_rows_carry_the_stream_between_bos_and_eos(seq_len):
    docs = random_docs(seq_len)
    rows = pack_wrap(docs, seq_len, BOS, EOS)
    stream = np.concatenate([np.append(d, EOS) for d in docs])
    assert rows.shape[1] == seq_len
    assert (rows[:, 0] == BOS).all() and (rows[:, -1] == EOS).all()
    inner = rows[:, 1:-1].reshape(-1)
    # No token lost or repeated across rows: the inner tokens are the stream, less a tail shorter than a row.
    assert np.array_equal(inner, stream[: len(inner)])
    assert 0 <= len(stream) - len(inner) < seq_len - 2


def test_pad_rows_truncate_long_documents_and_pad_only_after_eos():
    docs = [np.array([5, 6], np.int32), np.array([], np.int32), np.arange(10, 20, dtype=np.int32)]
    rows = pack_pad(docs, 6, BOS, EOS, PAD)
    assert rows.tolist() == [[BOS, 5, 6, EOS, PAD, PAD], [BOS, 10, 11, 12, 13, EOS]]  # the empty one is dropped
    for row in pack_pad(random_docs(1), 8, BOS, EOS, PAD):
        end = row.tolist().index(EOS)
        assert row[0] == BOS and (row[end + 1 :] == PAD).all() and PAD not in row[:end]


def test_plain_chunks_are_the_stream():
    docs = [np.arange(5, dtype=np.int32), np.arange(7, dtype=np.int32)]
    assert pack_none(docs, 4).tolist() == [[0, 1, 2, 3], [4, 0, 1, 2], [3, 4, 5, 6]]


def test_long_documents_encode_in_pieces_to_the_same_ids(monkeypatch):
    from augdiff.data import text as text_module
    from augdiff.data.tokenizer import train_bpe

    doc = tiny_english(40, seed=3).replace(". ", ".   ").replace("!", "!\n\n\n")
    tok = train_bpe(doc.split("\n\n"), vocab_size=300)
    monkeypatch.setattr(text_module, "_PIECE_CHARS", 37)
    assert len(text_module._pieces(doc)) > 20 and "".join(text_module._pieces(doc)) == doc
    assert text_module.encode_documents(tok, [doc, "a dog"])[0].tolist() == tok.encode(doc)


def test_pieces_keep_qwen_style_punctuation_newline_pre_tokens_whole(monkeypatch):
    """Qwen's regex joins ".\n" into one pre-token: a cut between them would change the ids."""
    from tokenizers import Regex, pre_tokenizers

    from augdiff.data import text as text_module

    qwen = (
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
        r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    )
    split = pre_tokenizers.Split(Regex(qwen), behavior="isolated")
    doc = tiny_english(40, seed=4).replace(". ", ".\n").replace("!", "!\n  ")

    def words(text: str) -> list[str]:
        return [w for w, _ in split.pre_tokenize_str(text)]

    monkeypatch.setattr(text_module, "_PIECE_CHARS", 23)
    pieces = text_module._pieces(doc)
    assert len(pieces) > 10 and "".join(pieces) == doc
    assert [w for p in pieces for w in words(p)] == words(doc)


def test_documents_of_a_file_are_paragraphs_for_wrap_and_lines_for_pad():
    text = "one\ntwo\n\n\nthree\n  \nfour\n"
    assert split_documents(text, "wrap") == ["one\ntwo", "three", "four"]
    assert split_documents(text, "pad") == ["one", "two", "three", "four"]
    assert split_documents(text, "none") == [text]


def test_character_text_keeps_its_old_rows_and_description(corpus):
    data = make_dataset(f"text:{corpus}", seq_len=16, text=TextConfig())
    train, valid, chars = chunk_text(data.spec, corpus.read_text(), 16)
    assert np.array_equal(data.train.numpy(), train) and np.array_equal(data.valid.numpy(), valid)
    assert data.describe() == {"spec": data.spec, "vocab_size": len(chars), "seq_len": 16, "chars": chars}
    # A run saved before BPE existed (only "chars") still rebuilds its data and its tokenizer.
    again = make_dataset(f"text:{corpus}", like=data.describe())
    assert torch.equal(again.train, data.train) and isinstance(again.tokenizer, CharTokenizer)


def test_bpe_text_end_to_end_decodes_through_the_description(corpus):
    data = make_dataset(f"text:{corpus}", seq_len=24, text=BPE)
    assert data.vocab_size == 300 and data.seq_len == 24 and data.describe()["packing"] == "wrap"
    rows = torch.cat([data.train, data.valid])
    assert rows.min() >= 0 and rows.max() < data.vocab_size
    tok = tokenizer_from_description(data.describe())
    assert isinstance(tok, BPETokenizer) and (tok.bos_id, tok.eos_id) == (BOS, EOS)
    # The training rows, unwrapped, are the training paragraphs joined by EOS (less the dropped tail).
    text = corpus.read_text()
    paragraphs = split_documents(text[: len(text) - int(len(text) * 0.05)], "wrap")
    stream = [i for p in paragraphs for i in (*tok.encode(p), EOS)]
    inner = data.train[:, 1:-1].reshape(-1).tolist()
    assert inner == stream[: len(inner)] and len(stream) - len(inner) < 22
    assert tok.decode(data.train[0]) == tok.decode(stream[:22])
    assert data.decode(data.train[0]).startswith(paragraphs[0][:10])
    # The description alone rebuilds the same rows (resume, evaluation): the tokenizer is not retrained.
    again = make_dataset(f"text:{corpus}", like=data.describe())
    assert torch.equal(again.train, data.train) and torch.equal(again.valid, data.valid)


def test_pad_packing_of_sentences(corpus):
    data = make_dataset(f"text:{corpus}", seq_len=16, text=TextConfig("bpe", 300, "pad"))
    tok = data.tokenizer
    assert (data.train[:, 0] == tok.bos_id).all() and tok.pad_id == PAD
    lines = corpus.read_text().splitlines()
    assert tok.decode(data.train[0]) == tok.decode(tok.encode(next(line for line in lines if line))[:14])


def test_second_build_reads_the_cache(corpus, monkeypatch, tmp_path):
    first = make_dataset(f"text:{corpus}", seq_len=24, text=BPE)

    def refuse(*args, **kwargs):
        raise AssertionError("the cache should have answered")

    monkeypatch.setattr(BPETokenizer, "encode", refuse)
    monkeypatch.setattr(BPETokenizer, "encode_batch", refuse)
    monkeypatch.setattr("augdiff.data.text.train_bpe", refuse)
    second = make_dataset(f"text:{corpus}", seq_len=24, text=BPE)
    assert torch.equal(first.train, second.train) and first.describe() == second.describe()
    # The cached rows stay on disk, memory-mapped in a compact dtype; batches come out as int64.
    assert isinstance(second.train_rows, np.memmap) and second.train_rows.dtype == np.uint16
    batch = second.train_batch(0, 3, 5)
    assert batch.dtype == torch.int64 and torch.equal(batch, first.train_batch(0, 3, 5))
    assert len(list((tmp_path / "cache" / "text").glob("*.train.npy"))) == 1
    # Other settings are other entries, never a stale hit.
    monkeypatch.undo()
    monkeypatch.setenv("AUGDIFF_CACHE", str(tmp_path / "cache"))
    make_dataset(f"text:{corpus}", seq_len=32, text=BPE)
    make_dataset(f"text:{corpus}", seq_len=24, text=TextConfig("bpe", 300, "none"))
    assert len(list((tmp_path / "cache" / "text").glob("*.train.npy"))) == 3


def test_cache_key_follows_every_setting_and_an_edited_corpus(corpus):
    base = {"tokenizer": "abc", "corpus": {"path": "/c", "size": 10, "mtime_ns": 1}, "seq_len": 24, "packing": "wrap"}
    keys = {cache_key(**base)}
    for change in (
        {"tokenizer": "abd"},
        {"seq_len": 25},
        {"packing": "pad"},
        {"corpus": {**base["corpus"], "size": 11}},
    ):
        keys.add(cache_key(**{**base, **change}))
    assert len(keys) == 5 and cache_key(**base) == cache_key(**dict(reversed(base.items())))
    before = make_dataset(f"text:{corpus}", seq_len=24, text=BPE)
    corpus.write_text(corpus.read_text() + tiny_english(40, seed=7))
    after = make_dataset(f"text:{corpus}", seq_len=24, text=BPE)
    assert after.train.shape[0] > before.train.shape[0]


def test_hub_offline_fails_fast_with_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(
        AugdiffError, match=r"^--data hf:text8: the Hugging Face hub is unreachable \(HF_HUB_OFFLINE=1\)"
    ):
        make_dataset("hf:text8")
    assert time.monotonic() - start < 2
    with pytest.raises(AugdiffError, match="unknown hub corpus.*hf:lm1b"):
        make_dataset("hf:imagenet")


def test_a_silent_hub_costs_only_the_timeout(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    release = threading.Event()

    def silent(*args, **kwargs):  # a resolver or firewall that never answers
        release.wait(10)
        raise OSError("late")

    monkeypatch.setattr(hub.socket, "create_connection", silent)
    start = time.monotonic()
    assert "no answer from huggingface.co" in hub.hub_unreachable(timeout=0.2)
    assert time.monotonic() - start < 2
    release.set()


def test_text_config_keys_are_validated():
    cfg = build_config({}, ["text.tokenizer=bpe", "text.bpe_vocab_size=512", "text.packing=pad"])
    assert cfg.text == TextConfig("bpe", 512, "pad") and build_config().text == TextConfig("auto", 4096, "auto")
    for override, match in [
        ("text.packing=zip", r"text.packing='zip' is not known \(choose one of: auto, wrap, pad, none\)"),
        ("text.bpe_vocab_size=100", "text.bpe_vocab_size=100 must be between 259"),
        ("text.bpe_vocab_size=big", "text.bpe_vocab_size: expected int"),
        ("text.tokenizer= ", "text.tokenizer= must be auto, char, text8, bpe or a path"),
        ("text.vocab=5", "did you mean 'text.*"),
    ]:
        with pytest.raises(AugdiffError, match=match):
            build_config({}, [override])


def test_bad_text_settings_are_one_line_errors(corpus, tmp_path):
    with pytest.raises(AugdiffError, match="text.packing=wrap adds BOS/EOS tokens.*text.tokenizer=bpe"):
        make_dataset(f"text:{corpus}", text=TextConfig("char", 300, "wrap"))
    with pytest.raises(AugdiffError, match="text.tokenizer=.*nope: not found"):
        make_dataset(f"text:{corpus}", text=TextConfig(str(tmp_path / "nope")))
    with pytest.raises(AugdiffError, match=r"--data text:.*too big for this corpus"):
        make_dataset(f"text:{corpus}", text=TextConfig("bpe", 50_000))
    with pytest.raises(AugdiffError, match="apply to text:PATH, sft:PATH and hf:NAME data only"):
        make_dataset("sawtooth", text=BPE)
    short = tmp_path / "short.txt"
    short.write_text(tiny_english(200, seed=0)[:2000])
    with pytest.raises(AugdiffError, match=r"0 validation rows of seq_len=512 \(wrap packing\)"):
        make_dataset(f"text:{short}", seq_len=512, text=BPE)


def test_a_bpe_run_trains_resumes_and_decodes_from_its_checkpoint(corpus, tmp_path):
    from augdiff.runs import load_run
    from augdiff.train import Trainer

    settings = {"data": f"text:{corpus}", "batch_size": 4, "model_size": "xxs", "seq_len": 24, "device": "cpu"}
    settings |= {"progress": False, "tensorboard": False, "optim": {"warmup_steps": 0}}
    cfg = build_config({**settings, "steps": 1}, ["text.tokenizer=bpe", "text.bpe_vocab_size=300"])
    Trainer(cfg, tmp_path / "run").fit()
    resumed = Trainer.resume(tmp_path / "run", steps=2)  # the data comes back from the description alone
    assert resumed.dataset.vocab_size == 300 and resumed.dataset.describe()["packing"] == "wrap"
    resumed.fit()
    run = load_run(tmp_path / "run")
    assert run.step == 2 and run.model.vocab_size == 300
    tok = tokenizer_from_description(run.data)
    assert tok.decode(tok.encode("A dog sat on the mat.")) == "A dog sat on the mat."
