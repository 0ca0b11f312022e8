"""Building a :class:`TrainConfig` from YAML, CLI flags and ``key=value`` overrides, with typed parsing."""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from augdiff.config.schema import TrainConfig
from augdiff.errors import AugdiffError
from augdiff.specs import LADD_METHODS

__all__ = ["build_config", "config_from_dict", "config_from_stored", "config_to_dict", "load_yaml"]

# Keys added after runs were saved without them, with the value that reproduces those runs' behaviour.
_LEGACY_VALUES = {
    "ladd": {
        "encoder_readout": "linear",
        "latent_mse": "sum",
        "latent_embed": "linear",
        "latent_positions": "restart",
    }
}


def _is_section(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


_BOOL_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check ``value`` against the annotation ``tp``; strings from the command line are parsed."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None or (isinstance(value, str) and value.lower() in ("none", "null")):
            if type(None) in args:
                return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0], key)
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
    elif tp in (int, float) and not isinstance(value, bool):
        if isinstance(value, (int, float) if tp is float else int):
            return tp(value)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return tp(value)
    elif tp is str and isinstance(value, str):
        return value
    raise AugdiffError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _unknown_key(key: str, known: list[str]) -> AugdiffError:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {close[0]!r}?" if close else f"known keys: {', '.join(sorted(known))}"
    return AugdiffError(f"unknown config key {key!r} ({hint})")


def _from_dict(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        norm = key.replace("-", "_")
        if norm not in names:
            known = [prefix + n for n in names]
            raise _unknown_key(prefix + key, known)
        tp = hints[norm]
        if _is_section(tp):
            if not isinstance(value, dict):
                raise AugdiffError(f"{prefix}{norm}: expected a mapping of keys, got {value!r}")
            kwargs[norm] = _from_dict(tp, value, prefix=f"{prefix}{norm}.")
        else:
            kwargs[norm] = _coerce(value, tp, prefix + norm)
    return cls(**kwargs)


def config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Validate a nested mapping (as from YAML) and build the :class:`TrainConfig`."""
    return _from_dict(TrainConfig, data)


def config_from_stored(data: dict[str, Any]) -> TrainConfig:
    """The config saved with a checkpoint: keys it predates take the value it was trained with (CADD's MSE term
    followed the token loss's weighting), and LADD's former boolean ``normalize`` becomes ``unit`` / ``none``."""
    tree = _deep_copy(data)
    cadd = tree.get("cadd")
    if isinstance(cadd, dict) and "mse_weighting" not in cadd:  # it followed the token loss's weighting then
        cadd["mse_weighting"] = tree.get("diffusion", {}).get("loss_weighting", "elbo")
    for section, legacy in _LEGACY_VALUES.items():
        stored = tree.get(section)
        if isinstance(stored, dict):
            for key, value in legacy.items():
                stored.setdefault(key, value)
            if isinstance(stored.get("normalize"), bool):
                stored["normalize"] = "unit" if stored["normalize"] else "none"
                if stored.get("schedule") == "auto" and tree.get("method") in LADD_METHODS:  # "auto" then
                    stored["schedule"] = "vp-sqrt" if tree.get("method") == "co-ladd" else "linear"
    return config_from_dict(tree)


def config_to_dict(cfg: TrainConfig) -> dict[str, Any]:
    """The nested plain-Python form of a config, as written to ``config.yaml``."""
    return dataclasses.asdict(cfg)


def _set_dotted(tree: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.replace("-", "_").split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise AugdiffError(f"{dotted}: {part} is a value, not a section")
        node = child
    node[parts[-1]] = value


def build_config(base: dict[str, Any] | None = None, overrides: list[str] | None = None) -> TrainConfig:
    """Merge ``key=value`` overrides (dotted for sections) into ``base`` and validate.

    Args:
        base: nested mapping, e.g. from a YAML file and the CLI flags.
        overrides: strings of the form ``optim.lr=1e-3``.
    """
    tree = _deep_copy(base or {})
    for item in overrides or []:
        if "=" not in item:
            raise AugdiffError(f"override {item!r} is not of the form key=value (e.g. optim.lr=1e-3)")
        key, value = item.split("=", 1)
        _set_dotted(tree, key.strip(), value.strip())
    return config_from_dict(tree)


def _deep_copy(tree: dict[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, dict) else v for k, v in tree.items()}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML mapping; a missing or malformed file is a user error."""
    path = Path(path)
    if not path.is_file():
        what = "is a directory" if path.is_dir() else "file not found"
        raise AugdiffError(f"--config {path}: {what} (give a path to a YAML file of config keys)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise AugdiffError(f"--config {path}: not a UTF-8 text file (give a YAML file of config keys)") from None
    except yaml.YAMLError as exc:
        line = getattr(getattr(exc, "problem_mark", None), "line", None)
        where = f" at line {line + 1}" if line is not None else ""
        raise AugdiffError(f"--config {path}: not valid YAML{where} (fix the syntax)") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise AugdiffError(f"--config {path}: expected a mapping of config keys at the top level")
    return data
