"""Networks: the DiT denoiser and its layers."""

from augdiff.nn.dit import DiT, DiTBlock, DiTConfig
from augdiff.nn.presets import MODEL_SIZES, model_shape

__all__ = ["DiT", "DiTBlock", "DiTConfig", "MODEL_SIZES", "model_shape"]
