"""Token arrays and character text: splits, epochs without duplicates, and clear errors."""

import numpy as np
import pytest
import torch

from augdiff.data import make_dataset
from augdiff.data.cache import compact_ids
from augdiff.errors import AugdiffError


def test_token_array_split_and_epochs(tmp_path):
    arr = np.arange(40 * 6).reshape(40, 6) % 11
    path = tmp_path / "toks.npy"
    np.save(path, arr)
    data = make_dataset(f"tokens:{path}")
    assert data.vocab_size == 11 and data.seq_len == 6
    assert data.train.shape[0] == 38 and data.valid.shape[0] == 2
    rows = torch.cat([data.train_batch(0, step, 19) for step in range(2)])  # one epoch of 38 rows
    assert len({tuple(r.tolist()) for r in rows}) == len({tuple(r.tolist()) for r in data.train})
    # The array is memory-mapped, not copied: a token file larger than memory trains.
    assert isinstance(data.train_rows, np.memmap) and rows.dtype == torch.int64
    valid = torch.cat(list(data.valid_batches(1)))
    assert torch.equal(valid, torch.from_numpy(arr[38:])) and len(list(data.valid_batches(1, 1))) == 1


def test_compact_ids_keep_every_id_in_the_narrowest_dtype():
    small, large = np.array([[0, 65535]]), np.array([[0, 65536]])
    assert compact_ids(small).dtype == np.uint16 and compact_ids(large).dtype == np.int32
    assert np.array_equal(compact_ids(small), small) and np.array_equal(compact_ids(large), large)


def test_ids_outside_the_vocabulary_are_refused(tmp_path):
    path = tmp_path / "toks.npy"
    np.save(path, np.array([[0, 1, 7], [2, 3, 4]]))
    with pytest.raises(AugdiffError, match=r"span \[0, 7\].*\[0, 5\)"):
        make_dataset(f"tokens:{path}", vocab_size=5)
    np.save(path, np.array([[0, -1, 2], [1, 2, 3]]))
    with pytest.raises(AugdiffError, match="cannot be negative"):
        make_dataset(f"tokens:{path}")


def test_text_is_character_level_and_round_trips(tmp_path):
    path = tmp_path / "corpus.txt"
    text = "the cat sat on the mat. " * 40
    path.write_text(text)
    data = make_dataset(f"text:{path}", seq_len=16)
    assert data.chars == "".join(sorted(set(text)))
    assert data.decode(data.train[0]) == text[:16]


@pytest.mark.parametrize("content,match", [("", "empty"), ("short text", "too short")])
def test_empty_or_short_corpus_is_refused(tmp_path, content, match):
    path = tmp_path / "corpus.txt"
    path.write_text(content)
    with pytest.raises(AugdiffError, match=match):
        make_dataset(f"text:{path}", seq_len=64)


def test_unknown_spec_and_missing_file(tmp_path):
    with pytest.raises(AugdiffError, match="not a known data source"):
        make_dataset("imagenet")
    with pytest.raises(AugdiffError, match="file not found"):
        make_dataset(f"text:{tmp_path / 'nope.txt'}")
