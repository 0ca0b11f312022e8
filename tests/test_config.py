"""Config: validation at load time with one clear message per problem."""

import pytest

from augdiff.config import build_config, config_from_dict, config_from_stored, config_to_dict, load_yaml
from augdiff.errors import AugdiffError


def test_overrides_are_typed_and_dotted():
    cfg = build_config({"steps": 7}, ["optim.lr=0.01", "model.time_conditioning=true", "seq_len=64"])
    assert cfg.steps == 7 and cfg.optim.lr == 0.01 and cfg.model.time_conditioning is True and cfg.seq_len == 64


def test_round_trip_through_a_dict():
    cfg = build_config({}, ["diffusion.schedule=cosine", "batch_size=12", "grad_accum=3"])
    assert config_from_dict(config_to_dict(cfg)) == cfg


@pytest.mark.parametrize(
    "overrides,match",
    [
        (["optim.lrr=1"], "did you mean 'optim.lr'"),
        (["steps=many"], "steps: expected int, got 'many'"),
        (["method=gpt"], "method='gpt' is not known"),
        (["diffusion.schedule=sigmoid"], "diffusion.schedule='sigmoid' is not known"),
        (["batch_size=10", "grad_accum=3"], "not divisible"),
        (["steps"], "not of the form key=value"),
        (["optim=3"], "expected a mapping"),
        (["ladd.normalize=true"], "ladd.normalize='true' is not known"),
        (["ladd.radius=0"], "ladd.radius=0.0 must be positive"),
        (["ladd.latent_embed=conv"], "ladd.latent_embed='conv' is not known"),
    ],
)
def test_bad_overrides_name_the_problem(overrides, match):
    with pytest.raises(AugdiffError, match=match):
        build_config({}, overrides)


def test_yaml_types_are_checked(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("steps: 12\noptim:\n  lr: fast\n")
    with pytest.raises(AugdiffError, match="optim.lr: expected float"):
        build_config(load_yaml(path))
    path.write_text("steps: [1\n")
    with pytest.raises(AugdiffError, match="not valid YAML"):
        load_yaml(path)


# -- configs saved with older runs -------------------------------------------------------------------------
LADD_KEYS_ADDED = ("encoder_readout", "encoder_dropout", "radius", "latent_mse", "latent_embed", "latent_positions")


def stored(**ladd):
    """A Co-LADD config as augdiff saved it before the keys of LADD_KEYS_ADDED existed."""
    tree = config_to_dict(build_config({"method": "co-ladd"}))
    for key in LADD_KEYS_ADDED:
        del tree["ladd"][key]
    tree["ladd"].update(ladd)
    return tree


def test_an_old_stored_config_loads_with_the_behaviour_it_was_trained_with():
    old = stored(normalize=True)
    lc = config_from_stored(old).ladd
    assert (lc.normalize, lc.encoder_readout, lc.latent_mse) == ("unit", "linear", "sum")
    assert (lc.latent_embed, lc.latent_positions) == ("linear", "restart")
    assert (lc.radius, lc.encoder_dropout) == (1.0, 0.0)  # keys without an older behaviour: the defaults
    assert config_from_stored(stored(normalize=False)).ladd.normalize == "none"
    assert old["ladd"]["normalize"] is True and "latent_embed" not in old["ladd"]  # the stored dict is not changed
    with pytest.raises(AugdiffError, match="ladd.normalize: expected str"):
        config_from_dict(old)  # which the plain loader would refuse


def test_a_current_stored_config_keeps_its_values():
    cfg = build_config({"method": "co-ladd"})
    again = config_from_stored(config_to_dict(cfg))
    assert again == cfg
    lc = again.ladd
    assert (lc.normalize, lc.encoder_readout, lc.latent_mse, lc.latent_embed, lc.latent_positions) == (
        "unit",
        "adaln",
        "mean",
        "mlp",
        "after",
    )


@pytest.mark.parametrize("key,value", [("normalize", "sphere"), ("latent_positions", "before")])
def test_a_stored_config_with_a_bad_value_names_the_key(key, value):
    tree = config_to_dict(build_config({"method": "co-ladd"}))
    tree["ladd"][key] = value
    with pytest.raises(AugdiffError, match=f"ladd.{key}='{value}' is not known"):
        config_from_stored(tree)
