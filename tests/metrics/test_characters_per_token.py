"""Bits per character of subword rows: characters of the encoded text ÷ the tokens the NLL averages over."""

import pytest
import torch
from dummies import tiny_english

from augdiff.data.tokenizer import train_bpe
from augdiff.metrics import bits_per_character, characters_per_token


@pytest.fixture(scope="module")
def bpe():
    return train_bpe(tiny_english(60, seed=1).split("\n\n"), vocab_size=300).with_pad()


def test_separators_count_one_character_padding_and_row_edges_none(bpe):
    a, b = bpe.encode("the cat sat."), bpe.encode("a dog ran.")
    bos, eos, pad = bpe.bos_id, bpe.eos_id, bpe.pad_id
    wrapped = torch.tensor([bos, *a, eos, *b, eos])  # two documents: "the cat sat.␤a dog ran."
    padded = torch.tensor([bos, *b, eos, pad, pad, pad])  # one document, then padding
    chars = len("the cat sat.") + 1 + len("a dog ran.") + len("a dog ran.")
    tokens = len(wrapped) + (len(b) + 2)
    assert characters_per_token(bpe, [wrapped, padded]) == pytest.approx(chars / tokens)
    # Padding is not a token of the NLL: a row padded further encodes the same characters per token.
    more = torch.cat([padded, torch.full((5,), pad)])
    assert characters_per_token(bpe, [more]) == characters_per_token(bpe, [padded])


def test_bits_per_character_divides_bits_per_token_by_characters_per_token():
    assert bits_per_character(2 * torch.log(torch.tensor(2.0)).item(), 4.0) == pytest.approx(0.5)
