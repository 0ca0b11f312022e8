"""Named model sizes (``model_size``): hidden width, depth and heads."""

from __future__ import annotations

from augdiff.errors import AugdiffError

__all__ = ["MODEL_SIZES", "model_shape"]

# small is the papers' 168M DiT at a 50k vocabulary (MDLM, CADD §5.1).
MODEL_SIZES: dict[str, dict[str, int]] = {
    "xxs": {"hidden_size": 32, "n_layers": 4, "n_heads": 2},
    "xs": {"hidden_size": 64, "n_layers": 4, "n_heads": 4},
    "tiny": {"hidden_size": 256, "n_layers": 6, "n_heads": 4},
    "small": {"hidden_size": 768, "n_layers": 12, "n_heads": 12},
}


def model_shape(size: str, **overrides: int | None) -> dict[str, int]:
    """The preset's shape with any non-``None`` overrides applied."""
    if size not in MODEL_SIZES:
        raise AugdiffError(f"model_size={size!r} is not known (choose one of: {', '.join(MODEL_SIZES)})")
    shape = dict(MODEL_SIZES[size])
    shape.update({k: v for k, v in overrides.items() if v is not None})
    return shape
