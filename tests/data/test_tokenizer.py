"""Tokenizers: exact round trips, special tokens, loading from files, and rebuilding from a data description."""

import json

import pytest
import torch
from dummies import tiny_english

from augdiff.data import tokenizer as tokenizer_module
from augdiff.data.tokenizer import (
    BPETokenizer,
    CharTokenizer,
    Text8Tokenizer,
    load_tokenizer,
    padding_id,
    tokenizer_from_description,
    train_bpe,
)
from augdiff.errors import AugdiffError

CORPUS = tiny_english(60, seed=1)


@pytest.fixture(scope="module")
def bpe() -> BPETokenizer:
    return train_bpe(CORPUS.split("\n\n"), vocab_size=300)


def test_char_tokenizer_round_trip_and_unknown_characters():
    tok = CharTokenizer("abc ")
    assert tok.encode("cab a") == [2, 0, 1, 3, 0]
    assert tok.decode(tok.encode("cab a")) == "cab a"
    assert tok.decode([0, 4, 1]) == "a\N{REPLACEMENT CHARACTER}b"  # id 4 is the mask
    assert (tok.bos_id, tok.eos_id, tok.pad_id) == (None, None, None)
    with pytest.raises(AugdiffError, match="'dz' are not in"):
        tok.encode("zad")


def test_text8_round_trips_its_alphabet_and_cleans_other_text():
    tok = Text8Tokenizer()
    assert tok.vocab_size == 27
    text = "anarchism originated as a term of abuse"
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(tok.encode("Hello, World! 42 times")) == "hello world times"


def test_bpe_trained_on_a_tiny_corpus_round_trips_any_text(bpe):
    assert bpe.vocab_size == 300
    assert (bpe.bos_id, bpe.eos_id, bpe.pad_id) == (0, 1, 2)
    # Byte-level BPE has no unknown token: unseen characters and layout survive exactly.
    text = "The cat sat on the mat!\n\n  Ünïcödé — 数字 42\ttabs"
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    assert max(ids) < bpe.vocab_size and min(ids) >= 3  # no special ids in plain text
    # Merges were learned: the most frequent word is one token.
    assert len(bpe.encode(" the")) == 1


def test_bpe_decode_skips_specials_unless_asked_and_marks_the_mask(bpe):
    ids = [bpe.bos_id, *bpe.encode("a dog"), bpe.eos_id, bpe.pad_id]
    assert bpe.decode(ids) == "a dog"
    assert bpe.decode(ids, skip_special=False) == "[BOS]a dog[EOS][PAD]"
    assert bpe.decode([*bpe.encode("a"), bpe.vocab_size, *bpe.encode(" dog")]) == "a\N{REPLACEMENT CHARACTER} dog"


def test_bpe_saved_and_loaded_from_a_file_or_directory(bpe, tmp_path):
    bpe.tokenizer.save(str(tmp_path / "tokenizer.json"))
    for path in (tmp_path / "tokenizer.json", tmp_path):
        loaded = load_tokenizer(path)
        assert loaded.encode(CORPUS[:500]) == bpe.encode(CORPUS[:500])
        assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (0, 1, 2)


def test_gpt2_style_directory_uses_endoftext_for_bos_and_eos(tmp_path):
    # A GPT-2 directory: vocab.json + merges.txt, with <|endoftext|> as an ordinary vocabulary entry.
    train_bpe(CORPUS.split("\n\n"), vocab_size=300).tokenizer.model.save(str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "vocab.json"]
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    vocab = {k: v for k, v in vocab.items() if k not in ("[BOS]", "[EOS]", "[PAD]")}
    vocab["<|endoftext|>"] = max(vocab.values()) + 1
    (tmp_path / "vocab.json").write_text(json.dumps(vocab))
    tok = load_tokenizer(tmp_path)
    end = vocab["<|endoftext|>"]
    assert tok.bos_id == tok.eos_id == end and tok.pad_id is None
    assert tok.encode("a dog<|endoftext|>") == [*tok.encode("a dog"), end]  # never split into bytes
    assert tok.decode(tok.encode("The cat sat.")) == "The cat sat."
    padded = tok.with_pad()
    assert padded.pad_id == padded.vocab_size - 1 == tok.vocab_size and padded.eos_id == end


def test_tokenizer_config_names_the_special_tokens(bpe, tmp_path):
    tok = bpe.tokenizer
    tok.save(str(tmp_path / "tokenizer.json"))
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"eos_token": {"content": "[PAD]"}, "bos_token": None}))
    loaded = load_tokenizer(tmp_path)
    assert loaded.eos_id == 2 and loaded.bos_id == 0  # config wins for EOS; BOS falls back to the known names


def test_description_rebuilds_every_kind_of_tokenizer(bpe, monkeypatch):
    old_run = {"spec": "text:/x.txt", "vocab_size": 3, "seq_len": 8, "chars": " ab"}
    char = tokenizer_from_description(old_run)
    assert isinstance(char, CharTokenizer) and char.decode(torch.tensor([1, 0, 2])) == "a b"
    assert tokenizer_from_description({"spec": "sawtooth", "vocab_size": 2, "seq_len": 8}) is None
    assert isinstance(tokenizer_from_description(Text8Tokenizer().describe()), Text8Tokenizer)
    rebuilt = tokenizer_from_description(json.loads(json.dumps(bpe.describe())))
    assert rebuilt.encode(CORPUS) == bpe.encode(CORPUS) and rebuilt.pad_id == bpe.pad_id
    # A large tokenizer.json is stored compressed; it rebuilds all the same.
    monkeypatch.setattr(tokenizer_module, "_INLINE_LIMIT", 100)
    desc = bpe.describe()
    assert "tokenizer_json" not in desc and "tokenizer_json_zlib" in desc
    assert tokenizer_from_description(desc).encode(CORPUS) == bpe.encode(CORPUS)


def test_bad_tokenizer_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(AugdiffError, match="not found"):
        load_tokenizer(tmp_path / "nope.json")
    with pytest.raises(AugdiffError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(AugdiffError, match="not a readable tokenizer"):
        load_tokenizer(tmp_path / "broken.json")
    with pytest.raises(AugdiffError, match="too big for this corpus.*ran out of merges"):
        train_bpe(["tiny tiny corpus"], vocab_size=5000)
    with pytest.raises(AugdiffError, match="between 259"):
        train_bpe(["tiny"], vocab_size=100)


def test_padding_id_is_the_pad_token_of_padded_rows_only():
    tok = train_bpe([tiny_english(40)], 300)
    desc = tok.describe()
    assert padding_id({**desc, "packing": "pad"}) == tok.pad_id is not None
    assert padding_id({**desc, "packing": "wrap"}) is None  # wrapped rows hold no padding
    assert padding_id({"spec": "sawtooth", "vocab_size": 2, "seq_len": 8}) is None
