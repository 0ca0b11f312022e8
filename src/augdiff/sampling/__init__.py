"""Samplers for masked diffusion and their categorical draws."""

from augdiff.processes import adjust_log_probs, sample_categorical  # re-exported: the samplers' draws
from augdiff.sampling.ancestral import AncestralSampler, Denoiser, SampleOutput
from augdiff.sampling.blocks import generate_blocks
from augdiff.sampling.generate import generate
from augdiff.sampling.named import SAMPLERS, sampler_options
from augdiff.sampling.remasking import REMASKING, Remasking

__all__ = [
    "AncestralSampler",
    "Denoiser",
    "SampleOutput",
    "adjust_log_probs",
    "sample_categorical",
    "generate",
    "generate_blocks",
    "REMASKING",
    "Remasking",
    "SAMPLERS",
    "sampler_options",
]
