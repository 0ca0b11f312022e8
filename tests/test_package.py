"""The package itself: a version, a public API that resolves on first use, and a cheap ``import augdiff``."""

import subprocess
import sys
from pathlib import Path

import pytest

import augdiff


def test_the_version_is_a_string_and_the_public_api_resolves():
    assert isinstance(augdiff.__version__, str) and augdiff.__version__
    for name in augdiff.__all__:
        assert getattr(augdiff, name) is not None
    assert augdiff.build_config is __import__("augdiff.config", fromlist=["build_config"]).build_config
    assert "Trainer" in dir(augdiff)


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no_such_thing"):
        augdiff.no_such_thing  # noqa: B018


def test_importing_the_package_does_not_import_torch():
    src = Path(augdiff.__file__).resolve().parents[1]
    code = "import sys, augdiff; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONPATH": str(src)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_the_package_is_marked_typed():
    assert (Path(augdiff.__file__).parent / "py.typed").is_file()
