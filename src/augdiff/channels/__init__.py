"""Latent channels, one per method: none (MDLM)."""

from augdiff.channels.base import ChannelInput, LatentChannel, ReverseStep
from augdiff.channels.none import NoChannel

__all__ = ["ChannelInput", "LatentChannel", "ReverseStep", "NoChannel"]
