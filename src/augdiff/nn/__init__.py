"""Networks: the DiT denoiser and its layers."""

from augdiff.nn.dit import DiT, DiTBlock, DiTConfig, KVCache
from augdiff.nn.presets import MODEL_SIZES, model_shape

__all__ = ["DiT", "DiTBlock", "DiTConfig", "KVCache", "MODEL_SIZES", "model_shape"]
