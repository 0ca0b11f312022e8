"""Forward processes, exact bridges and their parameterizations."""

from augdiff.processes.masked import flip_keep_ratios, forward_mask, reverse_bridge, subs_log_probs
from augdiff.processes.time import sample_times

__all__ = ["forward_mask", "flip_keep_ratios", "reverse_bridge", "subs_log_probs", "sample_times"]
