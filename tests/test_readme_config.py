"""The README's configuration table lists every key of TrainConfig with its default."""

import dataclasses
import re
from pathlib import Path

from augdiff.config.schema import TrainConfig

README = Path(__file__).resolve().parents[1] / "README.md"


def _keys(obj, prefix=""):
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            yield from _keys(value, f"{prefix}{f.name}.")
        else:
            yield prefix + f.name, value


def test_every_config_key_is_in_the_table_with_its_default():
    rows = dict(re.findall(r"^\| `([a-z0-9_.]+)` \| ([^|]+) \|", README.read_text(), flags=re.M))
    for key, value in _keys(TrainConfig()):
        assert key in rows, f"README's configuration table lacks {key}"
        shown = "null" if value is None else (str(value).lower() if isinstance(value, bool) else str(value))
        assert rows[key].strip() == shown, f"{key}: README says {rows[key].strip()}, the default is {shown}"
