"""The pair-structured synthetic task (``--data pairs``): its law, its exact likelihood, its determinism."""

import math

import torch

from augdiff.data import make_dataset
from augdiff.data.pairs import PairsDataset, pair_table


def test_sequences_follow_the_second_order_table():
    data = PairsDataset(seq_len=8, vocab=4)
    x = data.sample(40_000, torch.Generator().manual_seed(0))
    follow = (x[:, :-2] == 1) & (x[:, 1:-1] == 2)  # every place where the pair (1, 2) occurs
    seen = torch.bincount(x[:, 2:][follow], minlength=4).double()
    torch.testing.assert_close(seen / seen.sum(), pair_table(4)[1, 2], atol=0.02, rtol=0)


def test_exact_nll_is_minus_the_log_of_the_chain_rule():
    data = PairsDataset(seq_len=5, vocab=3)
    x = torch.tensor([[0, 2, 1, 1, 0]])
    t = data.table
    log_p = -2 * math.log(3) + math.log(t[0, 2, 1] * t[2, 1, 1] * t[1, 1, 0])
    assert math.isclose(float(data.exact_nll_per_token(x)[0]), -log_p / 5, rel_tol=1e-9)


def test_one_neighbour_tells_little_and_two_tell_much():
    t = pair_table(12)
    h2 = float(-(t * t.log()).sum(-1).mean())
    one = t.mean(0)
    h1 = float(-(one * one.log()).sum(-1).mean())
    assert h2 < 1.6 and h1 > 2.2 and math.log(12) - h1 < 0.2


def test_batches_are_seeded_and_the_validation_set_is_fixed():
    a, b = make_dataset("pairs"), make_dataset("pairs")
    assert torch.equal(a.train_batch(0, 3, 16), b.train_batch(0, 3, 16))
    assert not torch.equal(a.train_batch(0, 3, 16), a.train_batch(0, 4, 16))
    assert torch.equal(next(a.valid_batches(64)), next(b.valid_batches(64)))
    assert a.describe() == {"spec": "pairs", "vocab_size": 12, "seq_len": 32}
