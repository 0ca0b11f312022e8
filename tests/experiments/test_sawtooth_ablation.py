"""The LADD sawtooth runs at the authors' settings and the ablation that switches each change off alone:
configs only, no training (the end-to-end run: test_sawtooth_experiment.py)."""

import pytest

from augdiff.config import config_to_dict
from augdiff.experiments.sawtooth import PRESETS, method_config
from augdiff.experiments.sawtooth_ladd import ABLATIONS, LADD_RUNS, ladd_runs
from augdiff.experiments.training import flatten


def settings(method, preset="smoke", **kw):
    return flatten(config_to_dict(method_config(method, PRESETS[preset], **kw)))


def test_the_ablations_are_numbered_one_to_eight():
    assert [ab.number for ab in ABLATIONS] == list(range(1, 9))
    assert [ab.number for ab in ABLATIONS if ab.mixed] == [4]  # the one change that is not a config key


@pytest.mark.parametrize("ab", [ab for ab in ABLATIONS if not ab.mixed], ids=lambda ab: f"off-{ab.number}")
def test_each_ablation_changes_exactly_the_keys_it_names(ab):
    """A valid config that differs from the baseline in keys of the ablation, and in no other."""
    base = settings(ab.method)
    off = settings(ab.method, overrides=ab.overrides)
    changed = {key for key in base if base[key] != off[key]}
    assert changed and changed <= set(ab.overrides)  # a key may restate the baseline's value (radius 1 of unit)


def test_the_mixed_ablation_trains_one_co_ladd_model_for_both_modes():
    (mixed,) = ladd_runs("co-ladd", mixed=True)
    assert mixed.ladd == {"p_seq": 0.5} and mixed.rows == {"co-ladd-joint": 0.0, "co-ladd-seq": 1.0}
    assert settings("co-ladd", run=mixed)["ladd.p_seq"] == 0.5
    joint, seq = ladd_runs("co-ladd")  # the baseline: one model per mode
    assert (joint.ladd, joint.rows) == ({"p_seq": 0.0}, {"co-ladd-joint": 0.0})
    assert (seq.ladd, seq.rows) == ({"p_seq": 1.0}, {"co-ladd-seq": 1.0})
    assert ladd_runs("di-ladd", mixed=True) == LADD_RUNS["di-ladd"]  # Di-LADD is one model already


def test_the_paper_preset_trains_co_ladd_at_the_authors_settings():
    s = settings("co-ladd", "paper", run=LADD_RUNS["co-ladd"][1])
    assert s["ladd.p_seq"] == 1.0 and s["ladd.normalize"] == "none" and s["ladd.schedule"] == "ladd-sqrt"
    assert s["ladd.latent_dim"] == 32 and s["ladd.pool"] == "last" and s["ladd.p_cf"] == 0.0
    assert s["diffusion.loss_weighting"] == "elbo"
    assert (s["ladd.latent_mse"], s["ladd.latent_embed"], s["ladd.latent_positions"]) == ("mean", "mlp", "after")
    assert s["ladd.encoder_readout"] == "adaln"
    assert (s["batch_size"], s["optim.lr"], s["optim.weight_decay"], s["optim.warmup_steps"]) == (
        2048,
        3e-4,
        0.03,
        2500,
    )


def test_the_quick_preset_departs_from_the_authors_only_in_the_encoder_readout_and_the_latent_norm():
    paper = settings("co-ladd", "paper", run=LADD_RUNS["co-ladd"][1])
    quick = settings("co-ladd", "quick", run=LADD_RUNS["co-ladd"][1])
    budget = {"steps", "batch_size", "optim.lr", "optim.weight_decay", "optim.warmup_steps", "ckpt_every"}
    changed = {k for k in paper if paper[k] != quick[k]} - budget
    assert changed == {"ladd.pool", "ladd.latent_dim", "ladd.normalize", "ladd.radius"}
    assert (quick["ladd.normalize"], quick["ladd.radius"]) == (
        "radius",
        PRESETS["quick"].ladd_by_method["co-ladd"]["radius"],
    )


def test_the_quick_preset_trains_di_ladd_at_the_authors_settings():
    s = settings("di-ladd", "quick")
    assert s["ladd.independent_t"] is True and s["ladd.schedule"] == "polynomial"
    assert (s["ladd.vq_decay"], s["ladd.commitment_weight"]) == (0.95, 0.1)
    assert s["ladd.encoder_dropout"] == 0.1 and s["model.dropout"] == 0.1
    assert s["ladd.codebook_size"] == PRESETS["quick"].ladd_by_method["di-ladd"]["codebook_size"] == 16


def test_the_quick_presets_joint_model_reads_a_larger_latent_and_trains_longer():
    joint, seq = LADD_RUNS["co-ladd"]
    j1, s1 = settings("co-ladd", "quick", run=joint), settings("co-ladd", "quick", run=seq)
    assert (j1["ladd.radius"], s1["ladd.radius"]) == (16.0, 4.0)
    stage2 = method_config("co-ladd", PRESETS["quick"], stage=2, init_from="x", run=joint)
    assert (j1["steps"], stage2.steps, s1["steps"]) == (600, 300, PRESETS["quick"].ladd_stage1_steps)
    # the radius sweep still sets both models' norm
    swept = method_config("co-ladd", PRESETS["quick"], run=joint, overrides={"ladd.radius": 2.0})
    assert swept.ladd.radius == 2.0


def test_the_ablation_holds_every_model_to_the_common_budget(tmp_path, monkeypatch):
    """The quick preset trains its joint model longer and with R = 16; the ablation does not, so that a change is
    the only difference: its joint baseline is trained apart, in out/common-budget."""
    import augdiff.experiments.sawtooth_ablation as ablation

    calls = []

    def fake_rows(run, where, spec, *args, **kwargs):
        calls.append((run.name, where, spec))
        return {r: {"recon_nll": 0.5, "swd": {"1": 0.05, "2": 0.04}} for r in run.rows}

    monkeypatch.setattr(ablation, "ladd_rows", fake_rows)
    ablation.run_sawtooth_ablation(tmp_path, preset="quick", changes=(4, 6), device="cpu")
    assert all(not spec.ladd_by_run and not spec.ladd_steps_by_run for _, _, spec in calls)
    homes = {(name, where.relative_to(tmp_path).as_posix()) for name, where, _ in calls}
    assert homes == {
        ("co-ladd-joint", "common-budget"), ("co-ladd-seq", "."), ("co-ladd-mixed", "off-4"),
        ("co-ladd-joint", "off-6"), ("co-ladd-seq", "off-6"),
    }  # fmt: skip
