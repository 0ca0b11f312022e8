"""Every YAML file in configs/ is a valid config (so the examples stay true)."""

from pathlib import Path

import pytest

from augdiff.config import build_config, load_yaml

CONFIGS = sorted((Path(__file__).parents[1] / "configs").glob("*.yaml"))


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_example_config_is_valid(path):
    cfg = build_config(load_yaml(path))
    assert cfg.method and cfg.steps > 0


def test_there_are_example_configs():
    assert CONFIGS
