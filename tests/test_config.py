"""Config: validation at load time with one clear message per problem."""

import pytest

from augdiff.config import build_config, config_from_dict, config_to_dict, load_yaml
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
