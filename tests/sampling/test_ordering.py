"""Confidence-ordered unmasking (LLaDA's low-confidence remasking, margin and entropy orderings)."""

import numpy as np
import pytest
import torch

from augdiff.cli.main import main
from augdiff.sampling.ordering import ordered_unmask_step

M = 4  # mask id; V = 4 data tokens


def _log_p(rows: int, length: int, sharpness: torch.Tensor) -> torch.Tensor:
    """Position j puts ``sharpness[j]`` on token j % 4 and spreads the rest evenly."""
    p = ((1 - sharpness) / 3).unsqueeze(-1).repeat(1, 4)
    p[torch.arange(length), torch.arange(length) % 4] = sharpness
    return p.log().expand(rows, length, 4)


@pytest.mark.parametrize("how", ["confidence", "margin", "entropy"])
def test_a_step_unmasks_the_expected_number_of_the_most_confident_positions(how):
    length = 8
    sharp = torch.linspace(0.3, 0.99, length)  # later positions are surer
    x = torch.full((3, length), M)
    x[2, 7] = 1  # a given token: never touched, and not counted as masked
    # α 0.5 → 0.75: ρ_flip = 0.5, so 4 of 8 masked (and 4 of 7 in row 2, round(3.5))
    out = ordered_unmask_step(
        x, _log_p(3, length, sharp), 0.5, 0.75, M, how, torch.Generator().manual_seed(0), top_p=0.5
    )
    unmasked = (out != M) & (x == M)
    assert unmasked.sum(-1).tolist() == [4, 4, 4]
    assert unmasked[0, 4:].all() and not unmasked[0, :4].any()  # the four surest (top-p 0.5: drawn = the likeliest)
    assert out[2, 7] == 1 and unmasked[2, 3:7].all()
    assert (out[unmasked] == (torch.arange(length).expand(3, -1) % 4)[unmasked]).all()


def test_the_last_step_unmasks_everything_left_and_nothing_changes_when_nothing_is_masked():
    x = torch.full((2, 5), M)
    out = ordered_unmask_step(x, _log_p(2, 5, torch.full((5,), 0.5)), 0.9, 1.0, M, "confidence")
    assert (out != M).all()
    assert torch.equal(ordered_unmask_step(out, _log_p(2, 5, torch.full((5,), 0.5)), 0.5, 1.0, M, "margin"), out)


@pytest.mark.parametrize("method", ["mdlm", "cadd"])
def test_the_sampler_with_an_ordering_leaves_no_mask(method, tmp_path):
    run = tmp_path / "run"
    tiny = ["--model-size", "xxs", "--batch-size", "8", "seq_len=16", "progress=false", "tensorboard=false"]
    assert main(["train", "--method", method, "--data", "sawtooth", "--steps", "2", "--out", str(run), *tiny]) == 0
    out = tmp_path / "s.npy"
    assert main(["sample", str(run), "--num", "4", "--steps", "5", "--ordering", "confidence", "--out", str(out)]) == 0
    rows = np.load(out)
    assert rows.shape == (4, 16) and set(np.unique(rows)) <= {0, 1}


def test_temperature_schedules_start_at_tau_max_and_end_at_the_temperature():
    from augdiff.sampling.ancestral import temperature_at

    for how in ("linear", "cosine"):
        temps = [temperature_at(k, 5, 1.0, 2.5, how) for k in range(5)]
        assert temps[0] == pytest.approx(2.5) and temps[-1] == pytest.approx(1.0)
        assert all(a >= b for a, b in zip(temps, temps[1:], strict=False))
    assert temperature_at(2, 5, 1.0, 2.5, "linear") == pytest.approx(1.75)
    assert temperature_at(2, 5, 1.0, 2.5, "cosine") == pytest.approx(1.75)  # the cosine's midpoint too
    assert temperature_at(1, 5, 1.0, 2.5, "cosine") > temperature_at(1, 5, 1.0, 2.5, "linear")  # slower start
    assert temperature_at(3, 5, 0.7, 2.5, "constant") == 0.7 and temperature_at(0, 1, 0.7, 2.5, "cosine") == 0.7


def test_the_sampler_applies_the_schedule_step_by_step(monkeypatch):
    import augdiff.sampling.ancestral as ancestral
    from augdiff.sampling import AncestralSampler

    seen = []

    def spy(x, log_p, alpha_t, alpha_s, mask_id, generator=None, *, temperature, top_p, dtype):
        seen.append(temperature)
        return torch.where(x == mask_id, 0, x) if alpha_s == 1.0 else x

    class Uniform:
        mask_id, cacheable = M, True

        def particles(self, options=None):
            return 1

        def init_state(self, x_T, generator=None, options=None):
            return None

        def x0_log_probs(self, x_t, t, state=None):
            return torch.full((*x_t.shape, 4), -torch.log(torch.tensor(4.0)))

        def update_state(self, state, step, generator=None):
            return None

    from augdiff.schedules import make_mask_schedule

    monkeypatch.setattr(ancestral, "unmask_step", spy)
    sampler = AncestralSampler(Uniform(), make_mask_schedule("linear"), temperature_schedule="cosine", tau_max=2.0)
    sampler.sample(2, 6, 4)
    assert seen[0] == pytest.approx(2.0) and seen[-1] == pytest.approx(1.0) and len(seen) == 4
