"""Forward processes, exact bridges, their parameterizations, and categorical draws."""

from augdiff.processes.categorical import adjust_log_probs, sample_categorical
from augdiff.processes.masked import flip_keep_ratios, forward_mask, reverse_bridge, subs_log_probs, unmask_step
from augdiff.processes.time import sample_times

__all__ = [
    "forward_mask",
    "flip_keep_ratios",
    "reverse_bridge",
    "subs_log_probs",
    "unmask_step",
    "adjust_log_probs",
    "sample_categorical",
    "sample_times",
]
