"""Samplers for masked diffusion and their categorical draws."""

from augdiff.processes import adjust_log_probs, sample_categorical  # re-exported: the samplers' draws
from augdiff.sampling.ancestral import AncestralSampler, Denoiser, SampleOutput
from augdiff.sampling.generate import generate

__all__ = ["AncestralSampler", "Denoiser", "SampleOutput", "adjust_log_probs", "sample_categorical", "generate"]
