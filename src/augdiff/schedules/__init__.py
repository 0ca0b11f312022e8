"""Noise schedules: mask survival α(t) for the token channel."""

from augdiff.schedules.base import MaskSchedule, MaskScheduleOutput
from augdiff.schedules.mask import (
    CosineSchedule,
    GeometricSchedule,
    LinearSchedule,
    LogLinearSchedule,
    PolynomialSchedule,
    make_mask_schedule,
)

__all__ = [
    "MaskSchedule",
    "MaskScheduleOutput",
    "LinearSchedule",
    "LogLinearSchedule",
    "PolynomialSchedule",
    "GeometricSchedule",
    "CosineSchedule",
    "make_mask_schedule",
]
