"""The learning-rate schedule: linear warm-up, then constant or cosine decay, as a function of the step."""

import math

import pytest

from augdiff.train import lr_at


def test_warm_up_then_constant():
    assert [lr_at(s, 1.0, 4) for s in range(6)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]


def test_cosine_decays_from_the_peak_to_the_floor():
    lrs = [lr_at(s, 2.0, 10, "cosine", 110, 0.1) for s in range(110)]
    assert lrs[9] == pytest.approx(2.0) and lrs[-1] == pytest.approx(0.2)
    assert all(a >= b for a, b in zip(lrs[9:], lrs[10:], strict=False))  # never rises after the warm-up
    mid = lr_at(59, 2.0, 10, "cosine", 110, 0.1)  # halfway through the decay
    assert mid == pytest.approx(2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5))))
