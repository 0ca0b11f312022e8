"""Latent channels, one per method: none (MDLM)."""

from augdiff.channels.base import ChannelContext, ChannelInput, LatentChannel, ReverseStep
from augdiff.channels.none import NoChannel

__all__ = ["ChannelContext", "ChannelInput", "LatentChannel", "ReverseStep", "NoChannel"]
